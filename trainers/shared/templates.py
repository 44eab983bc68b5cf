"""Class names through prompt templates, for every method that encodes them: the template
tables, the lookup of a data set's template and the one text encoding of filled templates.

Tables: CUSTOM_TEMPLATES (zero-shot CLIP's hand-written prompt per data set, as CoOp's),
KGCOOP_TEMPLATES (KgCoOp's: zero-shot CLIP's but the texture one), IMAGENET_TEMPLATES_SELECT
(the 7 of zero-shot CLIP's ensemble and of TaskRes's ImageNet base) and IMAGENET_TEMPLATES (the
60 PromptSRC averages into its frozen text).

Encoding: ``fill_templates`` writes each class name into each template ([T][C] strings) and
``template_features`` runs CLIP's text tower once per template ([T] x [C, D]). The methods
reduce those per-template features as their references do, with the two reductions here:
``mean_of_normalised`` (zero-shot CLIP's ensemble and ZeroshotCLIP: the mean of the normalised
features, normalised) and ``normalised_mean`` (PromptSRC: the mean of the raw features in fp32,
normalised); KgCoOp normalises its one template's features. TaskRes averages the text tower's
EOT outputs before CLIP's projection (an enhanced base replaces the projection), so it uses the
tables only (trainers/taskres.py).
"""
import torch

import clip

CUSTOM_TEMPLATES = {
    "OxfordPets": "a photo of a {}, a type of pet.",
    "OxfordFlowers": "a photo of a {}, a type of flower.",
    "FGVCAircraft": "a photo of a {}, a type of aircraft.",
    "DescribableTextures": "{} texture.",
    "EuroSAT": "a centered satellite photo of {}.",
    "StanfordCars": "a photo of a {}.",
    "Food101": "a photo of {}, a type of food.",
    "SUN397": "a photo of a {}.",
    "Caltech101": "a photo of a {}.",
    "UCF101": "a photo of a person doing {}.",
    "ImageNet": "a photo of a {}.",
    "ImageNetSketch": "a photo of a {}.",
    "ImageNetV2": "a photo of a {}.",
    "ImageNetA": "a photo of a {}.",
    "ImageNetR": "a photo of a {}.",
    # the generated world (tools/world): the plain photo prompt, whatever the set's rendering style
    "WorldObjects": "a photo of a {}.",
    "WorldShapes": "a photo of a {}.",
    "WorldColors": "a photo of a {}.",
    "WorldPatterns": "a photo of a {}.",
    "WorldObjectsSketch": "a photo of a {}.",
    "WorldObjectsCartoon": "a photo of a {}.",
    "WorldObjectsNoisy": "a photo of a {}.",
    "ImageFolder": "a photo of a {}.",  # your own data: DATASET.PROMPT_TEMPLATE sets a better one
}

IMAGENET_TEMPLATES_SELECT = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)

# the reference KgCoOp's per-data-set prompts: zero-shot CLIP's, but for the texture one
KGCOOP_TEMPLATES = {**CUSTOM_TEMPLATES, "DescribableTextures": "a photo of a {}, a type of texture."}

# the 60 ImageNet templates (PromptSRC's frozen text references)
IMAGENET_TEMPLATES = (
    "a photo of a {}.",
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
)


def dataset_template(dataset_name, override="", table=CUSTOM_TEMPLATES, table_name="CUSTOM_TEMPLATES"):
    """``override`` (DATASET.PROMPT_TEMPLATE) when given, else the data set's template in ``table``."""
    if override:
        return override
    if dataset_name not in table:
        raise KeyError(
            f'No prompt template for data set "{dataset_name}" in {table_name}: set DATASET.PROMPT_TEMPLATE '
            f'(e.g. "a photo of a {{}}.") or add one to {table_name} in trainers/shared/templates.py'
        )
    return table[dataset_name]


def fill_templates(templates, classnames):
    """Every template filled with every class name ("_" read as a space): [T][C] strings."""
    names = [name.replace("_", " ") for name in classnames]
    return [[template.format(name) for name in names] for template in templates]


def normalised(features):
    """Features [..., D] divided by their L2 norm."""
    return features / features.norm(dim=-1, keepdim=True)


@torch.no_grad()
def template_features(clip_model, prompts):
    """CLIP's text features of each template's row of ``prompts`` [T][C]: a list of T [C, D] tensors
    in the model's dtype, not normalised."""
    device = clip_model.token_embedding.weight.device
    return [clip_model.encode_text(clip.tokenize(row).to(device)) for row in prompts]


def mean_of_normalised(per_template):
    """Zero-shot CLIP's ensemble: the mean over the templates of the normalised features, normalised: [C, D]."""
    return normalised(torch.stack([normalised(features) for features in per_template]).mean(0))


def normalised_mean(per_template):
    """PromptSRC's frozen text: the mean over the templates of the raw features (summed in fp32), normalised: [C, D]."""
    total = 0
    for features in per_template:
        total = total + features.float()  # [C, D]
    return normalised(total / len(per_template))
