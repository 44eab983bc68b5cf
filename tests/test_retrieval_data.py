"""Retrieval data: LAVIS annotation files, caption cleaning, the eval transform, Recall@K with ties."""
import json
import os

import numpy as np
import pytest
import torch

from tests.retrieval_data import write_mini_coco
from tta.retrieval.data import clean_caption, eval_transform, load_retrieval_set, set_files
from tta.retrieval.metrics import best_ranks, direction_metrics, matrix_ranks, report_metrics


def test_caption_cleaning_as_lavis():
    assert clean_caption("A man, riding a HORSE!  on the beach.") == "a man, riding a horse on the beach"
    assert clean_caption('Two dogs (brown) play: fetch; "tug"~ #fun*') == "two dogs brown play fetch tug fun"
    assert clean_caption("Isn't it a well-known place?\n") == "isn't it a well-known place?"
    long = " ".join(f"w{i}" for i in range(60))
    assert clean_caption(long).split() == [f"w{i}" for i in range(50)]


def test_coco_layout_read(tmp_path):
    entries = write_mini_coco(str(tmp_path), n_images=3, captions_per_image=2)
    data = load_retrieval_set("coco", str(tmp_path))
    assert data.images == [os.path.join(str(tmp_path), "coco2014", e["image"]) for e in entries]
    assert data.texts[:2] == ["a photo, number 0 caption 0 of image 0", "a photo, number 0 caption 1 of image 0"]
    assert data.txt2img == [0, 0, 1, 1, 2, 2]
    assert data.img2txt == [[0, 1], [2, 3], [4, 5]]
    assert set_files("flickr30k", "R") == (os.path.join("R", "flickr30k/annotations/flickr30k_test.json"),
                                           os.path.join("R", "flickr30k"))


def test_missing_annotation_file_names_it_and_its_source(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_retrieval_set("coco", str(tmp_path))
    message = str(e.value)
    assert os.path.join(str(tmp_path), "coco2014", "coco_karpathy_test.json") in message
    assert "annotations.zip" in message and "--ann_file" in message
    os.makedirs(tmp_path / "flickr30k" / "annotations")
    (tmp_path / "flickr30k" / "annotations" / "flickr30k_test.json").write_text("[]")
    with pytest.raises(ValueError, match="lists no captions"):
        load_retrieval_set("flickr30k", str(tmp_path))


def test_missing_image_folder_and_image(tmp_path):
    write_mini_coco(str(tmp_path), n_images=2)
    with pytest.raises(FileNotFoundError, match=r"image folder .*nowhere.*--image_root"):
        load_retrieval_set("coco", str(tmp_path), image_root=str(tmp_path / "nowhere"))
    os.remove(tmp_path / "coco2014" / "val2014" / "COCO_val2014_000000000001.jpg")
    with pytest.raises(FileNotFoundError, match="image 1 .*COCO_val2014_000000000001.jpg"):
        load_retrieval_set("coco", str(tmp_path))
    (tmp_path / "coco2014" / "coco_karpathy_test.json").write_text(json.dumps([{"file": "x"}]))
    with pytest.raises(ValueError, match="Entry 0 .* not a LAVIS retrieval annotation file"):
        load_retrieval_set("coco", str(tmp_path))


def test_eval_transform_resizes_short_edge_then_crops(tmp_path):
    from PIL import Image
    img = Image.fromarray(np.full((30, 60, 3), 255, np.uint8))
    x = eval_transform(16)(img)
    assert x.shape == (3, 16, 16)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073])
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711])
    assert torch.allclose(x[:, 8, 8], (1 - mean) / std, atol=1e-5)


def brute_force(scores, targets_per_query):
    """Ranks as LAVIS computes them, with numpy's stable sort: np.argsort(row)[::-1], best target."""
    ranks = []
    for row, targets in zip(scores.numpy(), targets_per_query):
        order = np.argsort(row, kind="stable")[::-1]
        ranks.append(min(int(np.where(order == t)[0][0]) for t in targets))
    ranks = np.array(ranks)
    return [100.0 * np.mean(ranks < k) for k in (1, 5, 10)]


@pytest.mark.parametrize("levels", [3, 1000000])  # many ties; (almost) none
def test_recall_equals_brute_force_with_ties(levels):
    g = torch.Generator().manual_seed(levels)
    n_img, per = 9, 3
    img2txt = [[per * i + c for c in range(per)] for i in range(n_img)]
    txt2img = [t // per for t in range(n_img * per)]
    i2t = torch.randint(0, levels, (n_img, n_img * per), generator=g).float()
    t2i = torch.randint(0, levels, (n_img * per, n_img), generator=g).float()
    m = report_metrics(i2t, t2i, txt2img, img2txt)
    tr = brute_force(i2t, img2txt)
    ir = brute_force(t2i, [[i] for i in txt2img])
    assert [m["txt_r1"], m["txt_r5"], m["txt_r10"]] == pytest.approx(tr)
    assert [m["img_r1"], m["img_r5"], m["img_r10"]] == pytest.approx(ir)
    assert m["txt_r_mean"] == pytest.approx(sum(tr) / 3) and m["img_r_mean"] == pytest.approx(sum(ir) / 3)
    assert m["r_mean"] == pytest.approx((sum(tr) + sum(ir)) / 6) and m["agg_metrics"] == m["txt_r_mean"]
    blocked = matrix_ranks(lambda rows: i2t[rows], n_img, img2txt, block=4)
    assert torch.equal(blocked, best_ranks(i2t, img2txt))


def test_tie_breaking_puts_higher_index_first():
    # all scores equal: the last gallery item ranks first (np.argsort(...)[::-1] with a stable sort)
    scores = torch.zeros(2, 12)
    m = direction_metrics(best_ranks(scores, [[11], [0]]), "text2image")
    assert m["img_r1"] == 50.0 and m["img_r10"] == 50.0  # target 11: rank 0; target 0: rank 11
