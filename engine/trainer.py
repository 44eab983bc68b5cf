"""Trainer life cycle with Dassl's names: TrainerBase, SimpleTrainer, TrainerX, build_trainer.

The life cycle, log lines, checkpoint names and resume rules are Dassl's (docs/ENGINE.md).
Trainers customise through small hooks (build_model, forward_backward, model_inference) instead
of copying the loop; each registered model's CheckpointKeys says what its checkpoints hold
(engine/checkpoint/ saves, resumes and loads them). The engine owns the update:
``forward_backward`` hands a batch's inputs and loss function to ``self.train_step``
(engine/step.py: micro-batches, autocast, the non-finite guard, backward, GradScaler, DDP no_sync,
the optimizers' step) in the precision the trainer declared once (``set_precision``), and
TrainerX steps the LR schedulers once per epoch, after the last batch.
"""
import datetime
import os.path as osp
import time
from collections import OrderedDict

import numpy as np
import torch
from tqdm import tqdm

from . import distributed
from .data import DataManager
from .evaluation import build_evaluator
from .feature_cache import cached_outputs, evaluation_feature_cache
from .results import RunRecord
from .checkpoint import CheckpointKeys, Registered, find_resume_point, load_models, position, resume_models, run_state, save_models
from .checkpoint.rng import capture_rng_state, offset_for_rank, restore_rng_state
from .utils import AverageMeter, MetricMeter, Registry, check_availability, distinct, mkdir_if_missing
from .step import Precision, TrainingStep, check_finite_loss
from .utils.faults import NonFiniteLossError, nonfinite_loss_message

TRAINER_REGISTRY = Registry("TRAINER")


def build_trainer(cfg):
    avai = TRAINER_REGISTRY.registered_names()
    check_availability(cfg.TRAINER.NAME, avai)
    if cfg.VERBOSE:
        print(f"Loading trainer: {cfg.TRAINER.NAME}")
    return TRAINER_REGISTRY.get(cfg.TRAINER.NAME)(cfg)


def trainer_class(cfg):
    """The class build_trainer instantiates for ``cfg`` (a registered factory function names it
    with its ``trainer_class(cfg)`` attribute); None for a name that is not registered
    (build_trainer names that error)."""
    if cfg.TRAINER.NAME not in TRAINER_REGISTRY.registered_names():
        return None
    registered = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
    pick = getattr(registered, "trainer_class", None)
    return registered if pick is None else pick(cfg)


def _summary_writer(log_dir):
    """A TensorBoard writer, or None when the tensorboard package is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("TensorBoard is not installed: scalars are not written (pip install tensorboard)")
        return None
    print(f"Initialize tensorboard (log_dir={log_dir})")
    return SummaryWriter(log_dir=log_dir)


class TrainerBase:
    """Registry of models/optimizers/schedulers plus the generic train loop and checkpoints."""

    def __init__(self):
        self._models = OrderedDict()
        self._optims = OrderedDict()
        self._scheds = OrderedDict()
        self._keys = OrderedDict()
        self._writer = None
        self.set_precision(Precision())  # fp32 until the trainer declares its own (build_model)
        self.resume_in_epoch = None  # (batches done, epoch-start and moment RNG states) of a mid-epoch checkpoint
        self.skipped_updates = 0  # updates the GradScaler skipped (inf/NaN gradients), carried over a resume

    def set_precision(self, precision):
        """Declare the precision (engine.step.Precision) the trainer runs in: the one place it is set."""
        self.precision = precision
        self.train_step = TrainingStep(precision, self.report_skipped_update)

    @property
    def scaler(self):
        """The GradScaler of PREC amp (None otherwise)."""
        return self.precision.scaler

    def leave_process_group(self):
        """Release whatever holds the torchrun process group before it is destroyed (trainers
        that wrap modules in DistributedDataParallel drop the wrapper)."""

    # ----- model registry -------------------------------------------------------------
    def register_model(self, name="model", model=None, optim=None, sched=None, keys=None):
        """Register ``model`` under ``name`` (its checkpoint folder) with its optimizer and scheduler.

        ``keys``: the model's CheckpointKeys (engine/checkpoint/keys.py), the one declaration of what
        its checkpoints save, leave out and rebuild, and of their extra fields; the default saves and
        loads the whole state dict.
        """
        if self.__dict__.get("_models") is None:
            raise AttributeError("Cannot assign model before super().__init__() call")
        if name in self._models:
            raise KeyError(f'Found duplicate model names: "{name}"')
        self._models[name] = model
        self._optims[name] = optim
        self._scheds[name] = sched
        self._keys[name] = CheckpointKeys() if keys is None else keys

    def get_model_names(self, names=None):
        names_real = list(self._models.keys())
        if names is None:
            return names_real
        if not isinstance(names, list):
            names = [names]
        for name in names:
            if name not in names_real:
                raise KeyError(f'Model "{name}" is not registered (registered: {names_real})')
        return names

    def registered_models(self):
        """{name: engine.checkpoint.Registered} of every registered model, in registration order."""
        return {
            name: Registered(self._models[name], self._optims[name], self._scheds[name], self._keys[name])
            for name in self.get_model_names()
        }

    # ----- checkpoints (engine/checkpoint/) -----------------------------------------------
    def check_checkpoint(self, name, checkpoint):
        """Raise a clear error when ``checkpoint`` cannot belong to model ``name`` of this trainer."""

    def run_state(self):
        """What a resumed run needs besides the models: RNG states and the loss scaler (collective under torchrun)."""
        return run_state.capture(self.scaler, self.skipped_updates)

    def restore_run_state(self, checkpoint):
        self.resume_in_epoch, self.skipped_updates = run_state.restore(checkpoint, self.scaler)

    def save_model(self, epoch, directory, is_best=False, val_result=None, model_name="", extra=None):
        """Write every model's checkpoint; under torchrun rank 0 writes, the others wait for it.

        ``extra``: more fields for every file (a mid-epoch checkpoint's position and RNG states).
        """
        fields = {**self.run_state(), **(extra or {})}  # one moment for every model's file
        save_models(self.registered_models(), fields, epoch, directory, is_best, val_result, model_name)

    def resume_model_if_exist(self, directory):
        found = find_resume_point(directory, self.get_model_names())
        if found is None:
            print("No checkpoint found, train from scratch")
            return 0
        for name, (_, checkpoint) in found.items():
            self.check_checkpoint(name, checkpoint)
        start_epoch = resume_models(self.registered_models(), directory, found)
        self.restore_run_state(found[self.get_model_names()[0]][1])
        return start_epoch

    def load_model(self, directory, epoch=None):
        """Load ``model-best.pth.tar`` (or ``model.pth.tar-{epoch}``) of every registered model."""
        if not directory:
            print(
                "Note that load_model() is skipped as no pretrained model is given "
                "(ignore this if it's done on purpose)"
            )
            return
        load_models(self.registered_models(), directory, epoch, check=self.check_checkpoint)

    # ----- modes and updates -----------------------------------------------------------
    def set_model_mode(self, mode="train", names=None):
        for name in self.get_model_names(names):
            if mode == "train":
                self._models[name].train()
            elif mode in ("test", "eval"):
                self._models[name].eval()
            else:
                raise KeyError(f'Unknown model mode "{mode}" (use "train", "test" or "eval")')

    def _unique(self, registry, names):
        """The distinct non-None objects of ``registry`` for ``names``: an optimizer or scheduler
        registered under two names (a model and its cache) is stepped once."""
        return distinct(registry[name] for name in self.get_model_names(names))

    def update_lr(self, names=None):
        for sched in self._unique(self._scheds, names):
            sched.step()

    def detect_anomaly(self, loss):
        """Stop before the update on a NaN/inf loss (TrainerX.run_epoch names the step)."""
        check_finite_loss(loss)

    # Dassl's update primitives, for a trainer that writes its own forward_backward; the trainers
    # here run the whole step through self.train_step.run (engine/step.py)
    def model_zero_grad(self, names=None):
        self.train_step.zero_grad(self._unique(self._optims, names))

    def model_backward(self, loss):
        """Back-propagate ``loss``; gradients add up until model_update (GradScaler under PREC amp)."""
        self.train_step.backward(loss)

    def model_update(self, names=None):
        """Step every distinct optimizer once (through the GradScaler under PREC amp)."""
        self.train_step.update(self._unique(self._optims, names))

    def report_skipped_update(self):
        """One log line per update the GradScaler skipped: its gradients held inf/NaN (e.g. PromptKD's
        KD_WEIGHT 1000 under PREC amp in the first steps, while the loss scale comes down)."""
        self.skipped_updates += 1
        where = f"epoch {getattr(self, 'epoch', 0) + 1}"
        if hasattr(self, "batch_idx"):
            where += f" batch {self.batch_idx + 1}"
        print(
            f"GradScaler skipped the update at {where}: inf/NaN gradients, loss scale now "
            f"{self.scaler.get_scale():g} ({self.skipped_updates} skipped so far)"
        )

    def model_backward_and_update(self, loss, names=None):
        """Zero the gradients, back-propagate ``loss`` and step every distinct optimizer once."""
        self.model_zero_grad(names)
        self.model_backward(loss)
        self.model_update(names)

    # ----- tensorboard -----------------------------------------------------------------
    def init_writer(self, log_dir):
        if self.__dict__.get("_writer") is None and distributed.is_main_process():
            self._writer = _summary_writer(log_dir)

    def close_writer(self):
        if self._writer is not None:
            self._writer.close()

    def write_scalar(self, tag, scalar_value, global_step=None):
        if self._writer is not None:
            self._writer.add_scalar(tag, scalar_value, global_step)

    # ----- loop -------------------------------------------------------------------------
    def train(self, start_epoch, max_epoch):
        self.start_epoch = start_epoch
        self.max_epoch = max_epoch
        self.before_train()
        for self.epoch in range(self.start_epoch, self.max_epoch):
            self.before_epoch()
            self.run_epoch()
            self.after_epoch()
        self.after_train()

    def before_train(self):
        pass

    def after_train(self):
        pass

    def before_epoch(self):
        pass

    def after_epoch(self):
        pass

    def run_epoch(self):
        raise NotImplementedError

    def test(self):
        raise NotImplementedError

    def parse_batch_train(self, batch):
        raise NotImplementedError

    def parse_batch_test(self, batch):
        raise NotImplementedError

    def forward_backward(self, batch):
        raise NotImplementedError

    def model_inference(self, input):
        raise NotImplementedError


class SimpleTrainer(TrainerBase):
    """A trainer with one data manager, an evaluator and Dassl's epoch hooks."""

    def __init__(self, cfg):
        super().__init__()
        self.check_cfg(cfg)
        if torch.cuda.is_available() and cfg.USE_CUDA:
            self.device = torch.device("cuda", distributed.local_rank()) if distributed.is_distributed() else torch.device("cuda")
        else:
            self.device = torch.device("cpu")
        self.start_epoch = self.epoch = 0
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.output_dir = cfg.OUTPUT_DIR
        self.cfg = cfg
        self.weights_digests = {}  # {weights file: content sha256}, hashed once per run (feature cache keys)
        self.build_data_loader()
        self.build_model()
        self.evaluator = build_evaluator(cfg, lab2cname=self.lab2cname)
        self.best_result = -np.inf
        self.run_record = RunRecord()

    learns = True  # training updates parameters (ZeroshotCLIP: it has none)

    def check_cfg(self, cfg):
        """Trainers assert their own config values here."""

    @classmethod
    def weights_files(cls, cfg):
        """{label: path} of the weights files this trainer loads for ``cfg`` (run.json records their content)."""
        return {}

    def build_data_loader(self):
        dm = DataManager(self.cfg)
        self.train_loader_x = dm.train_loader_x
        self.train_loader_u = dm.train_loader_u
        self.val_loader = dm.val_loader
        self.test_loader = dm.test_loader
        self.num_classes = dm.num_classes
        self.num_source_domains = dm.num_source_domains
        self.lab2cname = dm.lab2cname
        self.dm = dm

    def build_model(self):
        raise NotImplementedError("A trainer must build and register its model in build_model()")

    def train(self):
        try:
            super().train(self.start_epoch, self.max_epoch)
        except KeyboardInterrupt:
            where = f"epoch {self.epoch + 1}" + (f" batch {self.batch_idx + 1}" if hasattr(self, "batch_idx") else "")
            print(f"Interrupted at {where}: stopped. Rerun the same command to resume from the last checkpoint.")
            self.close_writer()
            raise

    def run_state(self):
        """Adds the trainer's name, the best val result and the evaluation history."""
        return {**super().run_state(), **run_state.history(self.cfg.TRAINER.NAME, self.best_result, self.run_record)}

    def restore_run_state(self, checkpoint):
        super().restore_run_state(checkpoint)
        self.best_result = run_state.restore_history(checkpoint, self.best_result, self.run_record)

    def check_checkpoint(self, name, checkpoint):
        """Refuses another trainer's checkpoint by name before its keys are compared."""
        run_state.check_written_by(checkpoint, name, self.cfg.TRAINER.NAME)

    def before_train(self):
        directory = self.cfg.OUTPUT_DIR
        if self.cfg.RESUME:
            directory = self.cfg.RESUME
        self.start_epoch = self.resume_model_if_exist(directory)
        if self.start_epoch == 0:
            offset_for_rank(distributed.rank())  # augmentation draws differ between ranks
        writer_dir = osp.join(self.output_dir, "tensorboard")
        if distributed.is_main_process():
            mkdir_if_missing(writer_dir)
        self.init_writer(writer_dir)
        self.time_start = time.time()

    def after_train(self):
        print("Finish training")
        do_test = not self.cfg.TEST.NO_TEST
        if do_test:
            if self.cfg.TEST.FINAL_MODEL == "best_val":
                print("Deploy the model with the best val performance")
                self.load_model(self.output_dir)
            else:
                print("Deploy the last-epoch model")
            self.test()
        elapsed = round(time.time() - self.time_start)
        print(f"Elapsed: {datetime.timedelta(seconds=elapsed)}")
        self.close_writer()

    def after_epoch(self):
        last_epoch = (self.epoch + 1) == self.max_epoch
        do_test = not self.cfg.TEST.NO_TEST
        freq = self.cfg.TRAIN.CHECKPOINT_FREQ
        meet_checkpoint_freq = (self.epoch + 1) % freq == 0 if freq > 0 else False

        if do_test and self.cfg.TEST.FINAL_MODEL == "best_val":
            curr_result = self.test(split="val")
            is_best = curr_result > self.best_result
            self.run_record.add_val(self.epoch, self.last_results, is_best)
            if is_best:
                self.best_result = curr_result
                self.save_model(self.epoch, self.output_dir, val_result=curr_result, model_name="model-best.pth.tar")
        if meet_checkpoint_freq or last_epoch:
            self.save_model(self.epoch, self.output_dir)

    @torch.no_grad()
    def test(self, split=None):
        self.set_model_mode("eval")
        self.evaluator.reset()
        if split is None:
            split = self.cfg.TEST.SPLIT
        if split == "val" and self.val_loader is not None:
            data_loader = self.val_loader
        else:
            split = "test"
            data_loader = self.test_loader
        print(f"Evaluate on the *{split}* set")
        self.before_evaluation(split)
        cache = evaluation_feature_cache(self, split, data_loader, self.weights_digests)
        outputs = self.batch_outputs(data_loader) if cache is None else cached_outputs(self, cache, data_loader)
        for output, label in outputs:
            self.evaluator.process(output, label)
        self.after_evaluation(split)
        if distributed.is_distributed():
            self.evaluator.merge(distributed.all_gather_objects(self.evaluator.state()))  # each image once
        results = self.evaluator.evaluate()
        self.last_results = results
        if split == "test":
            self.run_record.set_final(split, results)
        for k, v in results.items():
            self.write_scalar(f"{split}/{k}", v, self.epoch)
        return list(results.values())[0]

    def batch_outputs(self, data_loader):
        """(model_inference output, labels) of each batch of ``data_loader``."""
        for batch in tqdm(data_loader, disable=not distributed.is_main_process()):
            input, label = self.parse_batch_test(batch)
            yield self.model_inference(input), label

    def frozen_image_tower(self):
        """The image tower whose normalised output is this trainer's test-time image feature, when
        no learned parameter enters it (TEST.FEATURE_CACHE may then keep the features), else None.
        Such a trainer's model_inference is logits_from_features(image_features(image))."""
        return None

    def before_evaluation(self, split):
        """Called once before the batches of ``split`` ("val" or "test"), e.g. to compute image-independent text features."""

    def after_evaluation(self, split):
        """Called once after the test batches (e.g. to drop cached features)."""

    def model_inference(self, input):
        return self.model(input)

    def autocast(self):
        """The forward pass's precision context: autocast under PREC amp."""
        return self.precision.autocast()

    def parse_batch_test(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def get_current_lr(self, names=None):
        name = self.get_model_names(names)[0]
        return self._optims[name].param_groups[0]["lr"]


class TrainerX(SimpleTrainer):
    """Supervised training on the labelled loader train_loader_x."""

    def run_epoch(self):
        self.set_model_mode("train")
        losses = MetricMeter()
        batch_time = AverageMeter()
        data_time = AverageMeter()
        self.num_batches = len(self.train_loader_x)
        print_freq = self.cfg.TRAIN.PRINT_FREQ
        iter_freq = self.cfg.TRAIN.CHECKPOINT_ITER_FREQ

        batches, done = self.epoch_batches()
        end = time.time()
        for self.batch_idx, batch in enumerate(batches, start=done):
            data_time.update(time.time() - end)
            try:
                loss_summary = self.forward_backward(batch)
            except NonFiniteLossError as e:  # the step's guard stopped it before the update
                self.stop_on_nonfinite_loss(e.parts)
            if (self.batch_idx + 1) == self.num_batches:
                self.update_lr()  # once per epoch, after the last batch (Dassl trainers' timing)
            batch_time.update(time.time() - end)
            losses.update(loss_summary)

            meet_freq = (self.batch_idx + 1) % print_freq == 0
            only_few_batches = self.num_batches < print_freq
            if meet_freq or only_few_batches:
                nb_remain = (self.num_batches - self.batch_idx - 1) + (
                    self.max_epoch - self.epoch - 1
                ) * self.num_batches
                eta = str(datetime.timedelta(seconds=int(batch_time.avg * nb_remain)))
                info = [
                    f"epoch [{self.epoch + 1}/{self.max_epoch}]",
                    f"batch [{self.batch_idx + 1}/{self.num_batches}]",
                    f"time {batch_time.val:.3f} ({batch_time.avg:.3f})",
                    f"data {data_time.val:.3f} ({data_time.avg:.3f})",
                    f"{losses}",
                    f"lr {self.get_current_lr():.4e}",
                    f"eta {eta}",
                ]
                print(" ".join(info))

            n_iter = self.epoch * self.num_batches + self.batch_idx
            for name, meter in losses.meters.items():
                self.write_scalar("train/" + name, meter.avg, n_iter)
            self.write_scalar("train/lr", self.get_current_lr(), n_iter)
            if iter_freq > 0 and (self.batch_idx + 1) % iter_freq == 0 and self.batch_idx + 1 < self.num_batches:
                self.save_mid_epoch(self.batch_idx + 1)
            end = time.time()

    def epoch_batches(self):
        """(iterator over this epoch's training batches, batches already done).

        The RNG states at the iterator's creation are kept for mid-epoch checkpoints. Resuming
        from one, the epoch starts again from those states and its first B batches are read
        without training (data only): the rest of the epoch then gets the images, augmentations
        and worker seeds of an uninterrupted run; the RNG states of the checkpoint's moment follow.
        """
        resume, self.resume_in_epoch = self.resume_in_epoch, None
        if resume is not None:
            restore_rng_state(resume[1])
        self.epoch_rng_state = capture_rng_state()
        batches = iter(self.train_loader_x)
        if resume is None:
            return batches, 0
        done, _, moment = resume
        print(f"Resuming epoch {self.epoch + 1} after batch {done}: reading its first {done} batches again (data only)")
        for _ in range(done):
            next(batches)
        restore_rng_state(moment)
        return batches, done

    def save_mid_epoch(self, done):
        """A resumable checkpoint after ``done`` batches of this epoch (TRAIN.CHECKPOINT_ITER_FREQ)."""
        extra = run_state.mid_epoch_fields(done, self.epoch_rng_state)
        name = position.file_name((self.epoch, done))
        self.save_model(self.epoch - 1, self.output_dir, model_name=name, extra=extra)

    def stop_on_nonfinite_loss(self, loss_summary):
        step = f"epoch {self.epoch + 1}/{self.max_epoch}, batch {self.batch_idx + 1}/{self.num_batches}"
        raise FloatingPointError(
            nonfinite_loss_message(step, loss_summary, self.precision.name, self.cfg.OPTIM.NAME)
        ) from None

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)
