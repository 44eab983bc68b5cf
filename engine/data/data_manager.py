"""DataManager, DatasetWrapper and loader construction with Dassl's rules."""
import torch
from tabulate import tabulate
from torch.utils.data import DataLoader, Dataset

from .. import distributed
from ..utils import read_image
from .datasets import build_dataset
from .samplers import build_sampler
from .transforms import build_transform


def build_data_loader(
    cfg,
    sampler_type="SequentialSampler",
    data_source=None,
    batch_size=64,
    n_domain=0,
    n_ins=2,
    tfm=None,
    is_train=True,
    dataset_wrapper=None,
):
    sampler = build_sampler(
        sampler_type, cfg=cfg, data_source=data_source, batch_size=batch_size, n_domain=n_domain, n_ins=n_ins
    )
    # a training set smaller than one batch still yields that one short batch
    drop_last = is_train and len(data_source) >= batch_size
    sampler, batch_size = _shard_for_ranks(cfg, sampler, batch_size, is_train)
    wrapper = dataset_wrapper or DatasetWrapper
    loader = DataLoader(
        wrapper(cfg, data_source, transform=tfm, is_train=is_train),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available() and cfg.USE_CUDA,
    )
    if len(loader) == 0:
        raise ValueError(f"The data loader is empty: {len(data_source)} items with batch size {batch_size}")
    return loader


def _shard_for_ranks(cfg, sampler, batch_size, is_train):
    """(sampler, batch size) of this process: unchanged in a single process; under torchrun each
    of N ranks takes its share of the sampler's order and, in training, B/N images a step, so the
    global batch stays the configured B (evaluation keeps TEST.BATCH_SIZE per process)."""
    n = distributed.world_size()
    if n == 1:
        return sampler, batch_size
    if not is_train:
        return distributed.ShardedSampler(sampler, n, distributed.rank(), from_rank0=False, even=False), batch_size
    if batch_size % n != 0:
        raise ValueError(
            f"The training batch size {batch_size} is not divisible by the {n} processes: each process "
            f"takes batch size / {n} images so that the global batch stays the config's. Set "
            "DATALOADER.TRAIN_X.BATCH_SIZE to a multiple of --nproc_per_node."
        )
    sharded = distributed.ShardedSampler(sampler, n, distributed.rank())
    return sharded, batch_size // n


class DataManager:
    """Builds the dataset, its transforms and the train/val/test loaders."""

    def __init__(self, cfg, custom_tfm_train=None, custom_tfm_test=None, dataset_wrapper=None):
        dataset = build_dataset(cfg)

        if custom_tfm_train is None:
            tfm_train = build_transform(cfg, is_train=True)
        else:
            print("* Using custom transform for training")
            tfm_train = custom_tfm_train
        if custom_tfm_test is None:
            tfm_test = build_transform(cfg, is_train=False)
        else:
            print("* Using custom transform for testing")
            tfm_test = custom_tfm_test

        loaders = cfg.DATALOADER
        self.train_loader_x = build_data_loader(
            cfg,
            sampler_type=loaders.TRAIN_X.SAMPLER,
            data_source=dataset.train_x,
            batch_size=loaders.TRAIN_X.BATCH_SIZE,
            n_domain=loaders.TRAIN_X.N_DOMAIN,
            n_ins=loaders.TRAIN_X.N_INS,
            tfm=tfm_train,
            is_train=True,
            dataset_wrapper=dataset_wrapper,
        )

        self.train_loader_u = None
        if dataset.train_u:
            u = loaders.TRAIN_X if loaders.TRAIN_U.SAME_AS_X else loaders.TRAIN_U
            self.train_loader_u = build_data_loader(
                cfg,
                sampler_type=u.SAMPLER,
                data_source=dataset.train_u,
                batch_size=u.BATCH_SIZE,
                n_domain=u.N_DOMAIN,
                n_ins=u.N_INS,
                tfm=tfm_train,
                is_train=True,
                dataset_wrapper=dataset_wrapper,
            )

        def test_loader(data_source):
            return build_data_loader(
                cfg,
                sampler_type=loaders.TEST.SAMPLER,
                data_source=data_source,
                batch_size=loaders.TEST.BATCH_SIZE,
                tfm=tfm_test,
                is_train=False,
                dataset_wrapper=dataset_wrapper,
            )

        self.val_loader = test_loader(dataset.val) if dataset.val else None
        self.test_loader = test_loader(dataset.test)

        self._num_classes = dataset.num_classes
        self._num_source_domains = len(cfg.DATASET.SOURCE_DOMAINS)
        self._lab2cname = dataset.lab2cname
        self.dataset = dataset
        self.tfm_train = tfm_train
        self.tfm_test = tfm_test

        if cfg.VERBOSE:
            self.show_dataset_summary(cfg)

    @property
    def num_classes(self):
        return self._num_classes

    @property
    def num_source_domains(self):
        return self._num_source_domains

    @property
    def lab2cname(self):
        return self._lab2cname

    def show_dataset_summary(self, cfg):
        ds = self.dataset
        rows = [["Dataset", cfg.DATASET.NAME]]
        if cfg.DATASET.SOURCE_DOMAINS:
            rows.append(["Source", cfg.DATASET.SOURCE_DOMAINS])
        if cfg.DATASET.TARGET_DOMAINS:
            rows.append(["Target", cfg.DATASET.TARGET_DOMAINS])
        rows.append(["# classes", f"{self.num_classes:,}"])
        rows.append(["# train_x", f"{len(ds.train_x):,}"])
        if ds.train_u:
            rows.append(["# train_u", f"{len(ds.train_u):,}"])
        if ds.val:
            rows.append(["# val", f"{len(ds.val):,}"])
        rows.append(["# test", f"{len(ds.test):,}"])
        print(tabulate(rows))


class DatasetWrapper(Dataset):
    """Reads one Datum: the batch dict has img, label, domain, impath, index (and img0)."""

    def __init__(self, cfg, data_source, transform=None, is_train=False):
        self.cfg = cfg
        self.data_source = data_source
        self.transform = transform
        self.is_train = is_train
        self.k_tfm = cfg.DATALOADER.K_TRANSFORMS if is_train else 1
        self.return_img0 = cfg.DATALOADER.RETURN_IMG0
        if self.k_tfm > 1 and transform is None:
            raise ValueError(f"Cannot augment the image {self.k_tfm} times because transform is None")
        self.to_tensor = _img0_transform(cfg) if self.return_img0 else None

    def __len__(self):
        return len(self.data_source)

    def __getitem__(self, idx):
        item = self.data_source[idx]
        output = {"label": item.label, "domain": item.domain, "impath": item.impath, "index": idx}
        img0 = read_image(item.impath)

        if self.transform is None:
            output["img"] = img0
        elif isinstance(self.transform, (list, tuple)):
            for i, tfm in enumerate(self.transform):
                output["img" if i == 0 else f"img{i + 1}"] = self._transform_image(tfm, img0)
        else:
            output["img"] = self._transform_image(self.transform, img0)

        if self.return_img0:
            output["img0"] = self.to_tensor(img0)
        return output

    def _transform_image(self, tfm, img0):
        imgs = [tfm(img0) for _ in range(self.k_tfm)]
        return imgs[0] if len(imgs) == 1 else imgs


def _img0_transform(cfg):
    """Resize to INPUT.SIZE exactly, to tensor, and normalise if asked (Dassl's img0)."""
    from .transforms import build_img0_transform

    return build_img0_transform(cfg)
