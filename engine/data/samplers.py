"""Batch samplers with Dassl's names and random-number consumption.

RandomSampler/SequentialSampler are torch's. The domain and class samplers use Python's
``random`` (and NumPy for padding short classes) and, like Dassl, run ``__iter__`` once at
construction to know their length, which consumes random numbers.
"""
import random
from collections import defaultdict

import numpy as np
from torch.utils.data.sampler import RandomSampler, Sampler, SequentialSampler

AVAI_SAMPLERS = ["RandomSampler", "SequentialSampler", "RandomDomainSampler", "SeqDomainSampler", "RandomClassSampler"]


def _indices_by(data_source, attr):
    groups = defaultdict(list)  # first-appearance order
    for i, item in enumerate(data_source):
        groups[getattr(item, attr)].append(i)
    return groups


class _DomainSampler(Sampler):
    """Fills batches with ``batch_size // n_domain`` images from each chosen domain, no reuse."""

    def __init__(self, data_source, batch_size, n_domain, domains):
        self.domain_dict = _indices_by(data_source, "domain")
        self.domains = domains(list(self.domain_dict))
        if n_domain is None or n_domain <= 0:
            n_domain = len(self.domains)
        if batch_size % n_domain != 0:
            raise ValueError(f"batch_size={batch_size} must be divisible by the number of domains {n_domain}")
        self.n_domain = n_domain
        self.n_img_per_domain = batch_size // n_domain
        self.length = len(list(self.__iter__()))

    def _pick_domains(self):
        raise NotImplementedError

    def __iter__(self):
        remaining = {d: list(idxs) for d, idxs in self.domain_dict.items()}
        final_idxs = []
        stop = False
        while not stop:
            for domain in self._pick_domains():
                chosen = random.sample(remaining[domain], self.n_img_per_domain)
                final_idxs.extend(chosen)
                for idx in chosen:
                    remaining[domain].remove(idx)
                if len(remaining[domain]) < self.n_img_per_domain:
                    stop = True
        return iter(final_idxs)

    def __len__(self):
        return self.length


class RandomDomainSampler(_DomainSampler):
    def __init__(self, data_source, batch_size, n_domain):
        super().__init__(data_source, batch_size, n_domain, domains=lambda ds: ds)

    def _pick_domains(self):
        return random.sample(self.domains, self.n_domain)


class SeqDomainSampler(_DomainSampler):
    def __init__(self, data_source, batch_size):
        super().__init__(data_source, batch_size, 0, domains=sorted)

    def _pick_domains(self):
        return self.domains


class RandomClassSampler(Sampler):
    """Batches of ``batch_size // n_ins`` classes with ``n_ins`` images each."""

    def __init__(self, data_source, batch_size, n_ins):
        if batch_size < n_ins:
            raise ValueError(f"batch_size={batch_size} must be no less than n_ins={n_ins}")
        self.n_ins = n_ins
        self.ncls_per_batch = batch_size // n_ins
        self.index_dic = _indices_by(data_source, "label")
        self.labels = list(self.index_dic)
        if len(self.labels) < self.ncls_per_batch:
            raise ValueError(
                f"RandomClassSampler needs at least {self.ncls_per_batch} classes, the data has {len(self.labels)}"
            )
        self.length = len(list(self.__iter__()))

    def __iter__(self):
        chunks = defaultdict(list)
        for label in self.labels:
            idxs = list(self.index_dic[label])
            if len(idxs) < self.n_ins:
                idxs = list(np.random.choice(idxs, size=self.n_ins, replace=True))
            random.shuffle(idxs)
            full = len(idxs) - len(idxs) % self.n_ins
            chunks[label] = [idxs[i : i + self.n_ins] for i in range(0, full, self.n_ins)]

        avai_labels = list(self.labels)
        final_idxs = []
        while len(avai_labels) >= self.ncls_per_batch:
            for label in random.sample(avai_labels, self.ncls_per_batch):
                final_idxs.extend(chunks[label].pop(0))
                if not chunks[label]:
                    avai_labels.remove(label)
        return iter(final_idxs)

    def __len__(self):
        return self.length


def build_sampler(sampler_type, cfg=None, data_source=None, batch_size=32, n_domain=0, n_ins=16):
    if sampler_type == "RandomSampler":
        return RandomSampler(data_source)
    if sampler_type == "SequentialSampler":
        return SequentialSampler(data_source)
    if sampler_type == "RandomDomainSampler":
        return RandomDomainSampler(data_source, batch_size, n_domain)
    if sampler_type == "SeqDomainSampler":
        return SeqDomainSampler(data_source, batch_size)
    if sampler_type == "RandomClassSampler":
        return RandomClassSampler(data_source, batch_size, n_ins)
    raise ValueError(f"Unknown sampler type: {sampler_type} (supported: {', '.join(AVAI_SAMPLERS)})")
