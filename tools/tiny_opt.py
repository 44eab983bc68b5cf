"""A tiny random OPT language model and a byte-level BPE tokenizer in OPT's conventions, offline.

The tokenizer is trained in-process on the world's caption words (tools.world.captions) and keeps
OPT's special ids: <s> 0, <pad> 1, </s> 2 (prepended as BOS, as OPT's tokenizer does), <unk> 3;
"\\n" is one token (the captioner's end of caption). ``save_tiny_opt(folder)`` writes both in the
Hugging Face folder layout, so code under test loads them the way it loads facebook/opt-125m.
"""
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import OPTConfig, OPTForCausalLM, PreTrainedTokenizerFast

from tools.world.captions import vocabulary

SPECIAL = ["<s>", "<pad>", "</s>", "<unk>"]


def tiny_opt_tokenizer(words=None):
    words = vocabulary() if words is None else words
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [" ".join(words), "\n", "a photo of " + " ".join(words) + ".\n"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="</s> $A", pair="</s> $A </s> $B", special_tokens=[("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="</s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", padding_side="right")


def tiny_opt(vocab_size, seed=0, width=32, layers=2, heads=2, max_positions=256, init_std=0.2):
    """A random OPT; ``init_std`` above OPT's 0.02 so that its outputs depend enough on a prefix to learn from."""
    config = OPTConfig(vocab_size=vocab_size, hidden_size=width, num_hidden_layers=layers, ffn_dim=2 * width,
                       num_attention_heads=heads, max_position_embeddings=max_positions, word_embed_proj_dim=width,
                       pad_token_id=1, bos_token_id=2, eos_token_id=2, dropout=0.0, attention_dropout=0.0,
                       init_std=init_std)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return OPTForCausalLM(config).eval()


def save_tiny_opt(folder, seed=0, **kwargs):
    """Write a tiny OPT and its tokenizer into ``folder`` (Hugging Face layout); returns the folder."""
    tokenizer = tiny_opt_tokenizer()
    tiny_opt(len(tokenizer), seed=seed, **kwargs).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
