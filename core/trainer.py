"""The training loop, written once: an iterator of events that every front end consumes.

``Trainer(config).run()`` yields a :class:`StepEvent` after every optimiser step, an :class:`EpochEvent`
after every epoch (with that epoch's sample grid) and a :class:`FinishedEvent` at the end. The command
line prints these with Rich; the app draws them. Meanwhile the trainer keeps its run folder up to date:

``checkpoint.pt``   everything needed to resume exactly (after every epoch, and when stopped)
``model_final.pt``  the EMA weights and config, when training finishes, and (like every checkpoint
                    after that epoch) the EMA weights as they were ``guide_at`` of the way through
                    the epochs, the worse model that autoguides sampling (see
                    :func:`core.samplers.autoguided`)
``samples/epoch_NNN.png``  64 images from the same fixed noise every epoch, so epochs compare (a
                    class-conditional run draws 8 of each class instead, one row per class); for
                    MNIST and Fashion-MNIST the scoring classifier rates them (share recognised,
                    class entropy), so quality can be followed as it grows
``training_loss.png``  per-step loss and a smoothed curve
``metrics.jsonl``   one JSON object per step and per epoch, flushed as written
``config.json``     the run's settings
``status.json``     the run's state, for watchers (see :mod:`core.run_control`)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import checkpoint as ckpt
from . import jobs
from .classifier import SCORED_DATASETS, load_classifier
from .config import ConfigError, TrainConfig
from .data import DataError, Dataset, to_model_range
from .device import autocast, configure_for_speed, device_label, fused_adamw, resolve_device, use_bf16
from .distributed import DistributedError, join, leave
from .ema import EMA
from .files import check_writable
from .folder import run_data
from .fused_norm import channels_last_pays
from .images import plot_loss, save_grid
from .metrics import class_entropy, recognised_share
from .objective import draw_loss, example_losses, noise_predictor, timestep_probabilities
from .optimiser import make_optimisers, match_state_layouts
from .run_control import PAUSE_POLL_S, NoControl, RunControl
from .samplers import FAST_SAMPLER, last_step
from .sampling import ALL_CLASSES, plan_sampling
from .schedule import NoiseSchedule
from .unet import count_parameters

CHECKPOINT_ENTRIES = ("optimizer", "muon")  # where each optimiser's state is saved, AdamW's first
SAMPLE_COUNT = 64
SAMPLE_PER_CLASS = 8
SAMPLE_SEED = 1234
RESUMABLE_OVERRIDES = ("epochs", "output_dir", "device", "precision", "sample_every")


class TrainingError(RuntimeError):
    """Training cannot start or had to stop (a bad output folder, a diverging loss, ...)."""


@dataclass(frozen=True)
class StepEvent:
    step: int
    epoch: int
    batch: int
    batches: int
    loss: float
    lr: float
    images_per_sec: float
    elapsed: float


@dataclass(frozen=True)
class EpochEvent:
    """An epoch ended; ``recognised`` and ``class_entropy`` rate its preview samples (None when there
    were none, or the dataset has no scoring classifier)."""

    epoch: int
    mean_loss: float
    seconds: float
    samples: torch.Tensor | None
    sample_path: Path | None
    recognised: float | None = None
    class_entropy: float | None = None


@dataclass(frozen=True)
class FinishedEvent:
    """The run ended: ``completed`` when all epochs ran, otherwise it was stopped and can be resumed."""

    completed: bool
    step: int
    epoch: int
    elapsed: float
    model_path: Path | None
    checkpoint_path: Path


Event = StepEvent | EpochEvent | FinishedEvent


def resume_config(payload: dict[str, Any], overrides: dict[str, Any]) -> TrainConfig:
    """The checkpoint's config with the few settings that may change on resume taken from ``overrides``."""
    config = TrainConfig.from_dict(payload["config"])
    for key, value in overrides.items():
        if key in RESUMABLE_OVERRIDES:
            setattr(config, key, value)
        elif value != getattr(config, key):
            raise ConfigError(
                f"--{key} cannot change when resuming (the checkpoint was trained with {getattr(config, key)}); "
                f"only {', '.join('--' + k for k in RESUMABLE_OVERRIDES)} can"
            )
    return config


def check_data(data: Dataset, config: TrainConfig) -> None:
    """:class:`DataError` when ``data`` cannot train ``config``: a class-conditional run on images without
    classes. (Fewer images than one batch train as one smaller batch a step; the train command says so.)"""
    if config.conditional and len(data.classes) < 2:
        raise DataError(
            "--conditional needs two or more classes: put each class's images in its own sub-folder of --data_dir"
        )


class Trainer:
    """Trains a DDPM on one dataset; see the module docstring for what it writes and yields."""

    def __init__(
        self, config: TrainConfig, resume: str | Path | None = None, resume_overrides: dict[str, Any] | None = None
    ) -> None:
        payload = ckpt.load_checkpoint(resume) if resume is not None else None
        if payload is not None:
            if "optimizer" not in payload:
                raise ckpt.CheckpointError(f"{resume} holds only final weights; resume from a checkpoint.pt")
            config = resume_config(payload, resume_overrides or {})
        self.config = config.validate()
        self.output_dir = Path(config.output_dir)
        self.processes = join(resolve_device(config.device))
        self.device = self.processes.device
        if config.batch_size % self.processes.world_size:
            raise DistributedError(
                f"--batch_size {config.batch_size} is the global batch and must divide evenly among the "
                f"{self.processes.world_size} processes"
            )
        if self.processes.is_main:
            check_writable(self.output_dir)
        configure_for_speed(self.device)
        self.bf16 = use_bf16(self.device, config.precision)
        self._load_data(config)

        torch.manual_seed(config.seed)
        self.model = ckpt.build_model(config, self.data.image_shape, self.data.classes).to(self.device)
        self.ema = EMA(self.model, config.ema_decay)
        if channels_last_pays(self.device, self.bf16):  # NHWC order suits oneDNN's convolutions: core.fused_norm
            self.model.to(memory_format=torch.channels_last)
        self.schedule = NoiseSchedule.create(config.schedule, config.timesteps).to(self.device)
        # one wrapper for the run, so the compiled network on it (its loaded package) serves every preview
        self._sampling_model = noise_predictor(self.ema.model, self.schedule, config.prediction)
        self.t_probabilities = None
        if config.timestep_density != "uniform":
            density = timestep_probabilities(
                self.schedule, config.timestep_density, config.log_sigma_mean, config.log_sigma_std
            )
            self.t_probabilities = density.float().to(self.device)
        self.optimizers = make_optimisers(self.model, config.optimiser, config.lr, fused_adamw(self.device))
        self.data_rng = torch.Generator().manual_seed(config.seed)
        self.sample_count = SAMPLE_PER_CLASS * self.model.num_classes if config.conditional else SAMPLE_COUNT
        self.scorer = load_classifier(config.dataset) if config.dataset in SCORED_DATASETS else None

        self.guide: dict[str, torch.Tensor] | None = None
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.epoch_rng_state = self.data_rng.get_state()
        self.losses: list[float] = []
        self.epoch_steps: list[int] = []
        self.elapsed_before = 0.0
        self._stop_requested = False
        if payload is not None:
            self._restore(payload)
        self.network = self.processes.wrap(self.model)

    def _load_data(self, config: TrainConfig) -> None:
        """The run's images (the first ``max_images``), checked against the run, on its device as uint8 (each batch
        becomes float on its own), their labels when the run is conditional, and the steps they make."""
        self.data: Dataset = run_data(config, "train")
        if config.max_images is not None:
            self.data = self.data.head(config.max_images)
        check_data(self.data, config)
        self.pixels = self.data.pixels.to(self.device)
        self.labels = self.data.labels.to(self.device) if config.conditional else None
        self.batches_per_epoch = math.ceil(len(self.data) / config.batch_size)
        self.total_steps = self.batches_per_epoch * config.epochs

    @property
    def param_count(self) -> int:
        return count_parameters(self.model)

    @property
    def device_label(self) -> str:
        return device_label(self.device, self.bf16)

    @property
    def guide_epoch(self) -> int | None:
        """The epoch after which the EMA weights are kept as the autoguidance model; None when there is
        none (``guide_at`` 0, or a run too short for the guide to differ from the final weights)."""
        if self.config.guide_at <= 0:
            return None
        epoch = max(1, round(self.config.guide_at * self.config.epochs))
        return epoch if epoch < self.config.epochs else None

    @property
    def checkpoint_path(self) -> Path:
        return self.output_dir / "checkpoint.pt"

    def request_stop(self) -> None:
        """Ask the loop to save a checkpoint and end after the current step (safe from a signal handler)."""
        self._stop_requested = True

    def lr_at(self, step: int) -> float:
        r"""Linear warm-up over ``warmup_steps``, then the constant learning rate, or with
        ``lr_schedule="cosine"`` a decay to zero at the last step: :math:`\eta\,\tfrac12(1 + \cos \pi p)`,
        p the fraction of the post-warm-up steps done."""
        warmup = self.config.warmup_steps
        if step < warmup:
            return self.config.lr * (step + 1) / warmup
        if self.config.lr_schedule == "constant":
            return self.config.lr
        progress = (step - warmup) / max(1, self.total_steps - warmup)
        return self.config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    def run(self) -> Iterator[Event]:
        """Train until all epochs are done or a stop is requested, yielding events as it goes.

        The run's state is reported in ``status.json`` and pause/resume/stop requests are read from
        ``control.json`` between steps (see :mod:`core.run_control`)."""
        control = RunControl(self.output_dir) if self.processes.is_main else NoControl()
        control.report("running", self.step, self.epoch)
        try:
            yield from self._run(control)
        except TrainingError as err:
            control.report("failed", self.step, self.epoch, error=str(err))
            raise
        except (GeneratorExit, KeyboardInterrupt):
            if not control.ended:  # a consumer that stops reading after the final event changes nothing
                control.report("stopped", self.step, self.epoch)
            raise
        except Exception as err:
            control.report("failed", self.step, self.epoch, error=f"{type(err).__name__}: {err}")
            raise
        finally:
            leave(self.processes)

    def _should_stop(self, control: RunControl | NoControl) -> bool:
        """Whether to stop before this step, decided by all processes together from a stop request (read by
        rank 0) and a Ctrl+C or SIGTERM (on any of them); a pause request waits here, heartbeat going,
        until resume or stop. Only the agreed answer counts, never a process's own flag: a signal that
        lands after the vote is counted at the next step, by all of them."""
        request = control.pending_request()
        stop, pause = self.processes.agree(self._stop_requested or request == "stop", request == "pause")
        if stop or not pause:
            return stop
        control.report("paused", self.step, self.epoch)
        while True:
            time.sleep(PAUSE_POLL_S)
            request = control.pending_request()
            stop, resume = self.processes.agree(self._stop_requested or request == "stop", request == "resume")
            if stop:
                return True
            if resume:
                control.report("running", self.step, self.epoch)
                return False
            control.report("paused", self.step, self.epoch, force=False)

    def _run(self, control: RunControl | NoControl) -> Iterator[Event]:
        main = self.processes.is_main
        if main:
            self._write_config()
        metrics = self._open_metrics() if main else None
        start = time.perf_counter()
        seconds_per_step = 0.0
        last_tick = time.perf_counter()
        try:
            while self.epoch < self.config.epochs:
                self.data_rng.set_state(self.epoch_rng_state)
                order = torch.randperm(len(self.data), generator=self.data_rng).to(self.device)
                epoch_start = time.perf_counter()
                epoch_losses: list[float] = []
                for batch in range(self.batch_in_epoch, self.batches_per_epoch):
                    if self._should_stop(control):
                        control.report("stopped", self.step, self.epoch)
                        yield self._stopped(start)
                        return
                    loss = self._step_on(order, batch)
                    epoch_losses.append(loss)
                    now = time.perf_counter()
                    took, last_tick = now - last_tick, now
                    seconds_per_step = took if seconds_per_step == 0.0 else 0.9 * seconds_per_step + 0.1 * took
                    rate = min(self.config.batch_size, len(self.data)) / max(seconds_per_step, 1e-9)
                    event = StepEvent(
                        self.step,
                        self.epoch + 1,
                        batch + 1,
                        self.batches_per_epoch,
                        loss,
                        self.lr_at(self.step - 1),
                        rate,
                        self._elapsed(start),
                    )
                    share = jobs.tick()  # between steps: this job's share of the cores, as jobs come and go
                    sharing = {} if share is None else {"threads": share.threads, "sharing": share.describe()}
                    self._log(metrics, {"kind": "step", **_jsonable(event), **sharing})
                    control.report("running", self.step, self.epoch, force=False)
                    yield event
                self._close_epoch()
                yield self._end_epoch(metrics, start, epoch_start, epoch_losses)
                last_tick = time.perf_counter()
            final = self.output_dir / "model_final.pt"
            if main:
                self._save_final(final)
            self.processes.barrier()
            control.report("finished", self.step, self.epoch)
            yield FinishedEvent(True, self.step, self.epoch, self._elapsed(start), final, self.checkpoint_path)
        finally:
            if metrics is not None:
                metrics.close()

    def _step_on(self, order: torch.Tensor, batch: int) -> float:
        """One optimiser step on batch ``batch`` of the epoch's image ``order``; its loss.
        ``TrainingError`` when the loss is not finite (the last checkpoint is still good)."""
        size = self.config.batch_size
        picks = order[batch * size : (batch + 1) * size]
        loss = self.train_step(
            self._augment(self.images_at(picks)), None if self.labels is None else self.labels[picks]
        )
        if not math.isfinite(loss):
            raise TrainingError(
                f"the loss became {loss} at step {self.step + 1}; training stopped. "
                f"{self.checkpoint_path} still holds the last good state (try a lower --lr)"
            )
        self.step += 1
        self.batch_in_epoch = batch + 1
        self.losses.append(loss)
        return loss

    def _close_epoch(self) -> None:
        """Count the epoch, keep the autoguidance snapshot after its epoch, and the data order's RNG state."""
        self.epoch += 1
        self.batch_in_epoch = 0
        if self.epoch == self.guide_epoch:
            self.guide = {name: value.clone() for name, value in self.ema.state_dict().items()}
        self.epoch_rng_state = self.data_rng.get_state()
        self.epoch_steps.append(self.step)

    def _save_final(self, final: Path) -> None:
        """``model_final.pt``: the EMA weights (and the autoguidance weights) with the config."""
        ckpt.atomic_save(
            ckpt.make_payload(
                self.config,
                self.data.image_shape,
                self.ema.state_dict(),
                step=self.step,
                epoch=self.epoch,
                data=ckpt.data_entry(self.data),
                **self._guide_entry(),
            ),
            final,
        )

    def _augment(self, x0: torch.Tensor) -> torch.Tensor:
        """Mirror a random half of the batch left-right when the dataset allows it (CIFAR-10, or ``hflip``)."""
        if not (self.data.hflip or self.config.hflip):
            return x0
        flip = torch.rand(len(x0), device=x0.device) < 0.5
        return torch.where(flip[:, None, None, None], x0.flip(-1), x0)

    def images_at(self, picks: torch.Tensor) -> torch.Tensor:
        """The training images at ``picks`` as float32 in [-1, 1] (the dataset stays uint8 on the device)."""
        return to_model_range(self.pixels[picks])

    def train_step(self, x0: torch.Tensor, labels: torch.Tensor | None = None) -> float:
        """One optimiser step of L_simple on the batch ``x0`` (with its ``labels`` for a conditional run):
        learning rate from the warm-up, then the EMA update; returns the batch's mean loss.

        On several processes ``x0`` is the whole global batch on each; every process draws the same steps
        and noise for all of it and trains on its own rows (see :mod:`core.distributed`)."""
        for optimiser in self.optimizers:
            for group in optimiser.param_groups:
                group["lr"] = self.lr_at(self.step)
        if not self.model.training:  # setting every module's mode again took 0.16 ms a step
            self.model.train()
        draw = draw_loss(x0, labels, self.schedule.timesteps, self.t_probabilities)
        rows, share = self.processes.shard(len(x0)), 1.0
        if rows.start == rows.stop:  # fewer images than processes: this one still joins DDP's backward
            rows, share = slice(0, 1), 0.0
        with autocast(self.device, self.bf16):
            losses = example_losses(
                self.network,
                self.schedule,
                x0[rows],
                None if labels is None else labels[rows],
                draw.rows(rows),
                self.config.min_snr_gamma,
                self.config.prediction,
            )
        summed = losses.sum() * share
        self.model.zero_grad(set_to_none=True)
        (summed * (self.processes.world_size / len(x0))).backward()  # DDP averages: the batch mean's gradient
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        for optimiser in self.optimizers:
            optimiser.step()
        self.ema.update(self.model, self.step)
        return (self.processes.sum(summed.detach()) / len(x0)).item()

    def _end_epoch(self, metrics, start: float, epoch_start: float, losses: list[float]) -> EpochEvent:
        mean_loss = sum(losses) / len(losses) if losses else float("nan")
        if not self.processes.is_main:
            return EpochEvent(self.epoch, mean_loss, time.perf_counter() - epoch_start, None, None)
        samples, sample_path, quality = None, None, (None, None)
        if self.epoch % self.config.sample_every == 0 or self.epoch == self.config.epochs:
            samples = self.generate_samples()
            sample_path = save_grid(
                samples, self.output_dir / "samples" / f"epoch_{self.epoch:03d}.png", nrow=SAMPLE_PER_CLASS
            )
            quality = self.rate_samples(samples)
        self.save_checkpoint(start)
        plot_loss(self.losses, self.output_dir / "training_loss.png", self.epoch_steps)
        event = EpochEvent(self.epoch, mean_loss, time.perf_counter() - epoch_start, samples, sample_path, *quality)
        self._log(
            metrics,
            {
                "kind": "epoch",
                "epoch": self.epoch,
                "step": self.step,
                "loss": mean_loss,
                "epoch_seconds": event.seconds,
                "elapsed": self._elapsed(start),
                "samples": str(sample_path) if sample_path else None,
                "recognised": event.recognised,
                "class_entropy": event.class_entropy,
            },
        )
        return event

    def rate_samples(self, samples: torch.Tensor) -> tuple[float | None, float | None]:
        """The share of ``samples`` the scoring classifier recognises and their class entropy (see
        :mod:`core.metrics`), or (None, None) for a dataset without a classifier."""
        if self.scorer is None:
            return None, None
        _, probabilities = self.scorer.features_and_probabilities(samples)
        return recognised_share(probabilities), class_entropy(probabilities)

    def sampling_model(self) -> torch.nn.Module:
        """The EMA network as the noise predictor the samplers take (the same object all run)."""
        return self._sampling_model

    @torch.no_grad()
    def generate_samples(self) -> torch.Tensor:
        """The EMA model's preview images, on the CPU: the same seed every epoch so epochs compare, the
        recommended fast sampler with ``sample_steps`` steps (at most T); a conditional run draws
        ``SAMPLE_PER_CLASS`` of each class, guided with the default w. Previews are never autoguided:
        they rate the network itself."""
        with autocast(self.device, self.bf16):  # planned under it too: whether compiling pays depends on it
            plan = plan_sampling(
                self.sampling_model(),
                self.schedule,
                self.data.image_shape,
                self.sample_count,
                FAST_SAMPLER,
                min(self.config.sample_steps, self.config.timesteps),
                ALL_CLASSES,
                seed=SAMPLE_SEED,
                device=self.device,
            )
            return last_step(plan.run()).x.float().cpu()

    def save_checkpoint(self, start: float | None = None) -> Path:
        """Atomically write ``checkpoint.pt`` with everything needed to resume exactly here."""
        elapsed = self._elapsed(start) if start is not None else self.elapsed_before
        rng = {"torch": torch.get_rng_state(), "epoch_data": self.epoch_rng_state}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        payload = ckpt.make_payload(
            self.config,
            self.data.image_shape,
            self.model.state_dict(),
            ema=self.ema.state_dict(),
            **{entry: optimiser.state_dict() for entry, optimiser in self._named_optimisers().items()},
            step=self.step,
            epoch=self.epoch,
            batch_in_epoch=self.batch_in_epoch,
            rng=rng,
            elapsed=elapsed,
            losses=torch.tensor(self.losses, dtype=torch.float32),
            epoch_steps=torch.tensor(self.epoch_steps, dtype=torch.long),
            data=ckpt.data_entry(self.data),
            **self._guide_entry(),
        )
        ckpt.atomic_save(payload, self.checkpoint_path)
        return self.checkpoint_path

    def _named_optimisers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimisers by the checkpoint field holding their state: AdamW's in ``optimizer`` (as before
        Muon existed), Muon's momentum in ``muon`` when the run uses it."""
        return dict(zip(CHECKPOINT_ENTRIES[: len(self.optimizers)], self.optimizers, strict=True))

    def _guide_entry(self) -> dict[str, Any]:
        """The checkpoint field holding the autoguidance weights, once they exist."""
        return {} if self.guide is None else {"guide": self.guide}

    def _restore(self, payload: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(payload["model"])
            self.ema.load_state_dict(payload["ema"])
            for entry, optimiser in self._named_optimisers().items():
                optimiser.load_state_dict(payload[entry])
                match_state_layouts(optimiser)  # a run saved in the other memory layout (core.fused_norm)
            for group in self.optimizers[0].param_groups:  # the kernel this device has, whichever saved the run
                group["fused"] = fused_adamw(self.device)
            self.step, self.epoch = int(payload["step"]), int(payload["epoch"])
            self.batch_in_epoch = int(payload["batch_in_epoch"])
            self.epoch_rng_state = payload["rng"]["epoch_data"]
            torch.set_rng_state(payload["rng"]["torch"])
            if "cuda" in payload["rng"] and self.device.type == "cuda":
                torch.cuda.set_rng_state(payload["rng"]["cuda"], self.device)
            self.losses = payload["losses"].tolist()
            self.epoch_steps = payload["epoch_steps"].tolist()
            self.elapsed_before = float(payload["elapsed"])
            self.guide = payload.get("guide")
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise ckpt.CheckpointError(f"cannot resume from this checkpoint: {err}") from None

    def _stopped(self, start: float) -> FinishedEvent:
        if self.processes.is_main:
            self.save_checkpoint(start)
        self.processes.barrier()
        return FinishedEvent(False, self.step, self.epoch, self._elapsed(start), None, self.checkpoint_path)

    def _elapsed(self, start: float) -> float:
        return self.elapsed_before + time.perf_counter() - start

    def _write_config(self) -> None:
        text = json.dumps(
            {
                **self.config.to_dict(),
                "image_shape": list(self.data.image_shape),
                "parameters": self.param_count,
                "data_source": self.data.source,
                "device": self.device_label,
                "world_size": self.processes.world_size,
            },
            indent=2,
        )
        (self.output_dir / "config.json").write_text(text + "\n")

    def _open_metrics(self):
        """Open ``metrics.jsonl`` for appending, first dropping lines past the resumed step (a run killed
        after its last checkpoint), so the file always matches the state being continued."""
        path = self.output_dir / "metrics.jsonl"
        if self.step == 0:
            return path.open("w", buffering=1)
        kept = []
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line).get("step", 0) <= self.step:
                        kept.append(line + "\n")
                except json.JSONDecodeError:
                    continue
        path.write_text("".join(kept))
        return path.open("a", buffering=1)

    @staticmethod
    def _log(handle, record: dict[str, Any]) -> None:
        """Append ``record`` to ``metrics.jsonl`` (rank 0 only: the others have no handle)."""
        if handle is not None:
            handle.write(json.dumps(record) + "\n")
            handle.flush()


def _jsonable(event: StepEvent) -> dict[str, Any]:
    return {
        "step": event.step,
        "epoch": event.epoch,
        "batch": event.batch,
        "batches": event.batches,
        "loss": event.loss,
        "lr": event.lr,
        "images_per_sec": round(event.images_per_sec, 2),
        "elapsed": round(event.elapsed, 3),
    }
