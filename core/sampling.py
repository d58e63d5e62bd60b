"""What a request for samples means, decided once for every front end.

The command line, the Sample screen, ``eval`` and the trainer's previews all ask for "N images from this
model, of this class, with this guidance and seed". :func:`plan_sampling` turns that into the class of
every image, the starting noise :math:`x_T` and the validated list of timesteps, before the first step,
so a bad request fails at once with one message, and every front end lays classes out the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .compiling import MIN_BATCH, check_compile_mode, compile_error, compile_pays, compiled, should_compile
from .samplers import (
    DEFAULT_STEPS,
    NoisePredictor,
    SamplerStep,
    autoguided,
    guidance_interval,
    guided,
    guided_calls,
    last_step,
    resolve_eta,
    sample,
    sampler_timesteps,
)
from .schedule import NoiseSchedule

ALL_CLASSES = "all"
# Classifier-free guidance w for a class-conditional model, for each dataset it was measured on; a dataset not listed
# takes MNIST's. At 3 a conditional MNIST model draws the digit asked for every time (docs/conditional.md); clothes,
# whose runs are conditional by default, keep their variety at 1.25 (docs/fashion-mnist.md).
DEFAULT_GUIDANCE: dict[str, float] = {"mnist": 3.0, "fashion_mnist": 1.25}
# Autoguidance w by the run's early EMA snapshot, between sigma = 1 and 5, for each dataset it was measured on
# (docs/autoguidance.md: how w and the interval were chosen); a dataset not listed takes MNIST's.
DEFAULT_AUTOGUIDANCE: dict[str, float] = {"mnist": 2.0, "fashion_mnist": 3.5}


def default_guidance(dataset: str) -> float:
    """The classifier-free guidance w that sampling a conditional model of ``dataset`` uses unless asked."""
    return DEFAULT_GUIDANCE.get(dataset, DEFAULT_GUIDANCE["mnist"])


def default_guidance_text() -> str:
    """The measured defaults as the front ends print them, e.g. "3 for mnist, 1.25 for fashion_mnist"."""
    return ", ".join(f"{w:g} for {dataset}" for dataset, w in DEFAULT_GUIDANCE.items())


def default_autoguidance(dataset: str) -> float:
    """The autoguidance w that sampling a model trained on ``dataset`` uses unless asked otherwise."""
    return DEFAULT_AUTOGUIDANCE.get(dataset, DEFAULT_AUTOGUIDANCE["mnist"])


def default_autoguidance_text() -> str:
    """The measured defaults as the front ends print them, e.g. "2 for mnist, 3.5 for fashion_mnist"."""
    return ", ".join(f"{w:g} for {dataset}" for dataset, w in DEFAULT_AUTOGUIDANCE.items())


def class_labels(num_classes: int, class_label: int | str | None, count: int) -> torch.Tensor | None:
    """The class of each requested image: None for an unconditional model; ``count`` of one class; or for
    "all" (a conditional model's default) ceil(count / K) of each class in blocks, class 0 first, so a grid
    with that many images per row shows one class per row."""
    if not num_classes:
        if class_label not in (None, ALL_CLASSES):
            raise ValueError(
                "this model was trained without class labels; train one with --conditional to choose a class"
            )
        return None
    if class_label in (None, ALL_CLASSES):
        per_class = -(-count // num_classes)
        return torch.arange(num_classes * per_class) // per_class
    if not 0 <= int(class_label) < num_classes:
        raise ValueError(f"class {class_label} is out of range: this model knows classes 0-{num_classes - 1}")
    return torch.full((count,), int(class_label))


def resolve_class(class_names: tuple[str, ...], wanted: str | int | None) -> int | str | None:
    """The class index a user asked for by name or by index (a name wins where a folder's class is
    called "3"), "all", or None; ``ValueError`` naming the choices when it is neither."""
    if wanted is None or wanted == ALL_CLASSES or isinstance(wanted, int):
        return wanted
    if wanted in class_names:
        return class_names.index(wanted)
    folded = [name.casefold() for name in class_names]
    if wanted.casefold() in folded:
        return folded.index(wanted.casefold())
    if wanted.isdigit():
        return int(wanted)  # class_labels says when it is out of range
    if not class_names:
        raise ValueError(f"--class_label {wanted}: this model was trained without class labels")
    shown = ", ".join(class_names[:12]) + (", ..." if len(class_names) > 12 else "")
    raise ValueError(
        f"--class_label {wanted!r} is not a class of this model; choose one of {shown} (or 0-{len(class_names) - 1})"
    )


@dataclass(frozen=True)
class SamplingPlan:
    """A validated request: ``labels`` (None when unconditional), ``x_T`` and the ``timesteps`` to visit."""

    predictor: NoisePredictor
    schedule: NoiseSchedule
    sampler: str
    steps: int | None
    x_T: torch.Tensor
    labels: torch.Tensor | None
    timesteps: list[int]
    generator: torch.Generator
    autoguidance: float | None = None  # w when autoguided (two network calls per guided step), else None
    eta: float | None = None  # the fresh noise of ddim and dpm++sde; None for the others (resolve_eta)
    guidance_scale: float | None = None  # classifier-free guidance's w for a conditional model, else None
    compiled: bool = False  # whether the network runs compiled (core.compiling), from a package built first if missing

    @property
    def count(self) -> int:
        return len(self.x_T)

    @property
    def row_length(self) -> int | None:
        """Images per grid row that put one class per row ("all"), or None for a square-ish grid."""
        if self.labels is None or len(self.labels.unique()) == 1:
            return None
        return int((self.labels == self.labels[0]).sum())

    def run(self) -> Iterator[SamplerStep]:
        """Denoise, yielding every step (see :func:`core.samplers.sample`)."""
        return sample(self.predictor, self.schedule, self.x_T, self.sampler, self.steps, self.eta, self.generator)


@dataclass(frozen=True)
class SamplingRequest:
    """How to sample, apart from how many images and from which noise; checked once, when it is made.

    ``sampler`` and ``steps`` choose the denoising loop; ``guidance_scale`` is classifier-free guidance's w for a
    conditional model (None: the ``dataset``'s :func:`default_guidance`); ``guide`` (a worse version of the model)
    and ``autoguidance`` w autoguide it (None: the ``dataset``'s measured default, see
    :func:`resolve_autoguidance`); ``eta`` is the fresh noise of ddim and dpm++sde (None: the sampler's default);
    ``compile_mode`` is when to compile the network (:func:`core.compiling.should_compile`). ``ValueError`` for a
    bad value."""

    sampler: str
    steps: int | None = None
    guidance_scale: float | None = None
    guide: NoisePredictor | None = None
    autoguidance: float | None = None
    dataset: str = "mnist"
    eta: float | None = None
    compile_mode: str = "auto"

    def __post_init__(self) -> None:
        if self.guidance_scale is None:  # the dataset's measured default, fixed once so the request says it
            object.__setattr__(self, "guidance_scale", default_guidance(self.dataset))
        if self.guidance_scale < 0:
            raise ValueError(f"guidance w must be 0 or more, got {self.guidance_scale:g}")
        resolve_eta(self.sampler, self.eta)
        if self.autoguidance is not None and self.autoguidance < 0:
            raise ValueError(f"autoguidance w must be 0 or more, got {self.autoguidance:g}")
        check_compile_mode(self.compile_mode)


def plan_sampling(
    model: Callable[..., torch.Tensor],
    schedule: NoiseSchedule,
    image_shape: tuple[int, ...],
    count: int,
    sampler: str,
    steps: int | None = None,
    class_label: int | str | None = None,
    guidance_scale: float | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    guide: NoisePredictor | None = None,
    autoguidance: float | None = None,
    dataset: str = "mnist",
    eta: float | None = None,
    compile_mode: str = "auto",
) -> SamplingPlan:
    """Check a request and fix everything random about it: a generator seeded with ``seed`` on ``device`` draws
    :math:`x_T` first and then each step's fresh noise. A conditional ``model`` is guided towards each image's class
    (see :func:`class_labels`) with classifier-free guidance ``guidance_scale`` (None: the ``dataset``'s
    :func:`default_guidance`). With a ``guide`` (a worse version of the model) and ``autoguidance`` w other than 1
    the prediction is autoguided at the noise levels of :func:`core.samplers.guidance_interval` (see
    :func:`core.samplers.autoguided`); that costs two network calls per guided step, so the default step count
    shrinks until an image costs the same calls (:func:`autoguided_steps`). ``autoguidance=None`` means the
    ``dataset``'s :func:`default_autoguidance` for an unconditional model and a sampler whose steps can shrink, and
    none for DDPM (it always runs all T steps) or a conditional model (classifier-free guidance already steers it;
    ask for both explicitly). ``eta`` is the fresh noise per step of ddim and dpm++sde (None: the sampler's
    :data:`core.samplers.DEFAULT_ETA`). ``compile_mode`` says when the network runs compiled: ``"auto"`` for
    long runs on the CPU (see :func:`core.compiling.should_compile`), which depends on the precision: plan under
    the autocast the run uses. Raises ``ValueError`` for a bad request."""
    if count < 1:
        raise ValueError(f"the number of images must be positive, got {count}")
    labels = class_labels(getattr(model, "num_classes", 0), class_label, count)
    request = SamplingRequest(sampler, steps, guidance_scale, guide, autoguidance, dataset, eta, compile_mode)
    return _plan(model, schedule, image_shape, labels, count, seed, device, request)


def resolve_autoguidance(
    has_guide: bool, sampler: str, conditional: bool, autoguidance: float | None, dataset: str
) -> float | None:
    """The w a request is autoguided with, or None when it is not: a model without a guide, or w = 1.
    None asks for the default where it was measured: the ``dataset``'s :func:`default_autoguidance` for
    an unconditional model with a sampler whose steps can shrink; none for DDPM or a conditional model.
    ``ValueError`` for a negative w."""
    if autoguidance is None:
        autoguidance = default_autoguidance(dataset) if sampler in DEFAULT_STEPS and not conditional else 1.0
    if autoguidance < 0:
        raise ValueError(f"autoguidance w must be 0 or more, got {autoguidance:g}")
    return autoguidance if has_guide and autoguidance != 1 else None


def _plan(
    model: Callable[..., torch.Tensor],
    schedule: NoiseSchedule,
    image_shape: tuple[int, ...],
    labels: torch.Tensor | None,
    count: int,
    seed: int,
    device: torch.device | str,
    request: SamplingRequest,
    run_images: int | None = None,
) -> SamplingPlan:
    """The plan for ``count`` images of ``labels`` from the noise of ``seed``, as ``request`` asks; compiled when
    that pays for the ``run_images`` (default ``count``) of the whole run that this plan is a batch of."""
    sampler, guide = request.sampler, request.guide
    eta = resolve_eta(sampler, request.eta)
    conditional = labels is not None
    autoguidance = resolve_autoguidance(guide is not None, sampler, conditional, request.autoguidance, request.dataset)
    autoguiding = autoguidance is not None
    interval = guidance_interval(schedule) if autoguiding else None
    steps = request.steps
    if autoguiding and steps is None and sampler in DEFAULT_STEPS:
        steps = autoguided_steps(schedule, sampler, interval)
    timesteps = sampler_timesteps(schedule, sampler, steps)
    generator = torch.Generator(device).manual_seed(seed)
    x_T = torch.randn(count if labels is None else len(labels), *image_shape, generator=generator, device=device)
    images = run_images or len(x_T)
    calls, mode = len(timesteps), request.compile_mode
    compiling = should_compile(model, device, calls, images, mode)
    if compiling:
        build = compile_pays(device, calls, images, mode, cached=False)  # a run that pays for a missing package
        model, guide = compiled(model, build), None if guide is None else compiled(guide, build)
    predictor, worse = model, guide
    if labels is not None:
        labels = labels.to(device)
        predictor = guided(model, labels, request.guidance_scale, model.null_class)
        worse = None if guide is None else guided(guide, labels, request.guidance_scale, guide.null_class)
    if autoguiding:
        predictor = autoguided(predictor, worse, autoguidance, interval)
    scale = None if labels is None else request.guidance_scale
    return SamplingPlan(
        predictor, schedule, sampler, steps, x_T, labels, timesteps, generator, autoguidance, eta, scale, compiling
    )


def compile_for_sampling(
    model: NoisePredictor,
    schedule: NoiseSchedule,
    image_shape: tuple[int, ...],
    device: torch.device | str = "cpu",
    dataset: str = "mnist",
) -> str | None:
    """Build the package of ``model`` for the calls sampling runs make (a conditional model's with its labels,
    on classifier-free guidance's doubled batch), through one DDIM step on the fewest images a package takes
    (:data:`core.compiling.MIN_BATCH`). Later processes on this machine then load it in milliseconds, and
    ``auto`` runs them compiled (:func:`core.compiling.should_compile`), Phase 3's first included. Call it under
    the autocast that runs use. Returns why it could not be compiled, or None."""
    plan = plan_sampling(model, schedule, image_shape, MIN_BATCH, "ddim", 1, None, None, 0, device,
                         dataset=dataset, compile_mode="on")  # fmt: skip
    last_step(plan.run())
    return compile_error(model)


def autoguided_steps(schedule: NoiseSchedule, sampler: str, guided: torch.Tensor | None) -> int:
    """The most steps of ``sampler`` that, autoguided where ``guided`` flags them (two network calls there,
    one elsewhere), cost no more calls than its default steps without a guide: an image costs the same."""
    calls = min(DEFAULT_STEPS[sampler], schedule.timesteps)
    steps = calls
    while steps > 1 and guided_calls(guided, sampler_timesteps(schedule, sampler, steps)) > calls:
        steps -= 1
    return steps


def generate(
    model: Callable[..., torch.Tensor],
    schedule: NoiseSchedule,
    count: int,
    image_shape: tuple[int, ...],
    sampler: str,
    steps: int | None = None,
    seed: int = 0,
    batch: int = 250,
    device: torch.device | str = "cpu",
    class_label: int | str | None = None,
    guidance_scale: float | None = None,
    guide: NoisePredictor | None = None,
    autoguidance: float | None = None,
    dataset: str = "mnist",
    eta: float | None = None,
    compile_mode: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``count`` finished images (for evaluation) in batches of ``batch`` (batch i seeded ``seed + i``), on
    the CPU in [-1, 1], with the class each was drawn as (None for an unconditional model; by default all
    classes in equal blocks, as :func:`class_labels` lays them out), autoguided and compiled as in
    :func:`plan_sampling`."""
    labels = class_labels(getattr(model, "num_classes", 0), class_label, count)
    labels = None if labels is None else labels[:count]
    request = SamplingRequest(sampler, steps, guidance_scale, guide, autoguidance, dataset, eta, compile_mode)
    images = []
    for index, start in enumerate(range(0, count, batch)):
        size = min(batch, count - start)
        chunk = None if labels is None else labels[start : start + size]
        plan = _plan(model, schedule, image_shape, chunk, size, seed + index, device, request, count)
        images.append(last_step(plan.run()).x.float().clamp(-1, 1).cpu())
    return torch.cat(images), labels
