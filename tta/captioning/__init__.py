"""RLCF image captioning: a ClipCap / CapDec captioner (CLIP embedding -> mapper prefix -> frozen OPT)
adapted per test image with a CLIP reward.

mapper.py   the prefix mapper (the reference's parameter names)
model.py    the captioner on a frozen OPT, its token CE, loading OPT and weights files
generate.py captions by beam search / nucleus sampling (OPT's generate, KV cache), the reference's decoding
metrics.py  BLEU-1..4 / METEOR / ROUGE-L / CIDEr (pycocoevalcap), CLIPScore / RefCLIPScore
features.py cached CLIP features of a training set (safetensors), the reference's feature pickles as data
train.py    the mapper's training: ClipCap on image embeddings, CapDec on noisy text embeddings
adapt.py    RLCF per image: K candidates, CLIP rewards, the mapper's AdamW steps, the episodic reset
data.py     the caption JSON layouts (COCO Karpathy, Flickr30k, NoCaps and its domain split), image loading
record.py   run.json of a caption.py tta output folder (reruns skip, other inputs are refused)
cli.py      caption.py: extract / train / tta / split_nocaps
"""
