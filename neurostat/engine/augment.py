"""Image augmentation: random affine transforms that mimic how the images were generated.

A digit written a little to the left, tilted a few degrees or a little larger is the same digit:
small shifts, rotations and scalings (and, where the label allows, flips) produce new images
from the same distribution *with the same label*. Transforms that break the image-label relation
(flipping a 6 into a 9 ... or a large rotation) must be left out - which is why flips are off by
default.

Everything is batched torch on the device of the batch (``affine_grid`` + ``grid_sample``), one
call per minibatch, with torch's global random number generator: the estimator seeds it from
``random_state`` so that augmented fits are reproducible.
"""

import math
from numbers import Integral, Real

import torch
from torch.nn import functional as F

DEFAULTS = {
    "shift": 0.1,        # maximal translation, as a fraction of the image height / width
    "rotation": 10.0,    # maximal rotation in degrees
    "scale": 0.1,        # zoom factor drawn from [1 - scale, 1 + scale]
    "hflip": False,      # mirror left-right with probability 1/2
    "vflip": False,      # mirror top-bottom with probability 1/2
    "padding": "zeros",  # what enters at the border: "zeros", "border" or "reflection"
    "p": 0.5,            # probability that an image is transformed (else kept as it is)
}


def resolve_augment(augment):
    """The augmentation settings for an estimator's ``augment`` parameter.

    Parameters
    ----------
    augment : None, bool or dict
        None/False: no augmentation. True: :data:`DEFAULTS`. A dict overrides some of the
        defaults (keys ``shift``, ``rotation``, ``scale``, ``hflip``, ``vflip``, ``padding``).

    Returns
    -------
    dict or None
    """
    if augment is None or augment is False:
        return None
    if augment is True:
        return dict(DEFAULTS)
    if not isinstance(augment, dict):
        raise TypeError(
            f"augment must be None, a bool or a dict of {sorted(DEFAULTS)}; got "
            f"{type(augment).__name__}."
        )
    unknown = set(augment) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"augment: unknown keys {sorted(unknown)}; use {sorted(DEFAULTS)}.")
    out = {**DEFAULTS, **augment}
    for key, hi in (("shift", 1.0), ("rotation", 180.0), ("scale", 1.0)):
        v = out[key]
        if not isinstance(v, Real) or isinstance(v, bool) or not 0 <= v < hi:
            raise ValueError(f"augment[{key!r}] must be a number in [0, {hi:g}); got {v!r}.")
    p = out["p"]
    if not isinstance(p, Real) or isinstance(p, bool) or not 0 <= p <= 1:
        raise ValueError(f"augment['p'] must be a probability in [0, 1]; got {p!r}.")
    for key in ("hflip", "vflip"):
        if not isinstance(out[key], (bool, Integral)):
            raise ValueError(f"augment[{key!r}] must be a bool; got {out[key]!r}.")
    if out["padding"] not in ("zeros", "border", "reflection"):
        raise ValueError(
            f"augment['padding'] must be 'zeros', 'border' or 'reflection'; got "
            f"{out['padding']!r}."
        )
    return out


def affine_matrices(n, *, shift=0.1, rotation=10.0, scale=0.1, hflip=False, vflip=False,
                    p=1.0, device=None, dtype=torch.float32, generator=None):
    """Random 2x3 affine matrices (``affine_grid``'s convention), one per image.

    Output pixel ``p`` samples the input at ``A p + t`` in normalized coordinates [-1, 1];
    ``A = R(angle) / zoom`` (times -1 on a flipped axis), ``t`` uniform in ``[-2 shift, 2 shift]``
    (a shift of ``shift`` image widths). With probability ``1 - p`` an image gets the identity.

    Returns
    -------
    theta : tensor of shape (n, 2, 3)
    """
    def unif(lo, hi):
        return lo + (hi - lo) * torch.rand(n, device=device, dtype=dtype, generator=generator)

    angle = unif(-1.0, 1.0) * math.radians(rotation)
    zoom = unif(1.0 - scale, 1.0 + scale)
    tx, ty = unif(-2.0 * shift, 2.0 * shift), unif(-2.0 * shift, 2.0 * shift)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    fx = torch.ones(n, device=device, dtype=dtype)
    fy = torch.ones(n, device=device, dtype=dtype)
    if hflip:
        fx = torch.where(torch.rand(n, device=device, generator=generator) < 0.5, -fx, fx)
    if vflip:
        fy = torch.where(torch.rand(n, device=device, generator=generator) < 0.5, -fy, fy)
    theta = torch.stack([
        torch.stack([cos * fx, -sin * fy, tx], dim=1),
        torch.stack([sin * fx, cos * fy, ty], dim=1),
    ], dim=1)
    if p < 1.0:
        keep = torch.rand(n, device=device, generator=generator) >= p
        eye = torch.eye(2, 3, device=device, dtype=dtype).expand(n, 2, 3)
        theta = torch.where(keep[:, None, None], eye, theta)
    return theta


def apply_affine(images, theta, padding="zeros"):
    """Resample ``images`` (n, c, h, w) by the affine maps ``theta`` (n, 2, 3), bilinear."""
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding,
                         align_corners=False)


def random_affine(images, *, shift=0.1, rotation=10.0, scale=0.1, hflip=False, vflip=False,
                  padding="zeros", p=1.0, generator=None):
    """Randomly shifted, rotated, scaled (and optionally flipped) copies of ``images``.

    Parameters
    ----------
    images : tensor of shape (n, c, h, w)
    shift : float, default=0.1
        Maximal shift as a fraction of the image size (uniform in each direction).
    rotation : float, default=10.0
        Maximal rotation in degrees (uniform).
    scale : float, default=0.1
        Zoom factor uniform in ``[1 - scale, 1 + scale]``.
    hflip, vflip : bool, default=False
        Mirror with probability 1/2. Off by default: a mirrored digit is often another digit.
    padding : {"zeros", "border", "reflection"}, default="zeros"
        What enters at the edges; "zeros" suits images with a zero background.
    p : float in [0, 1], default=1.0
        Probability that an image is transformed; the others pass unchanged (so the net also
        sees images as sharp as the test images: interpolation blurs very small images).
    generator : torch.Generator, default=None
        None uses torch's global generator (seeded by the estimator's ``random_state``).

    Returns
    -------
    tensor of shape (n, c, h, w)
        Same dtype and device; row i is a transform of image i (labels stay valid).
    """
    if images.ndim != 4:
        raise ValueError(f"images must have shape (n, c, h, w); got {tuple(images.shape)}.")
    theta = affine_matrices(images.shape[0], shift=shift, rotation=rotation, scale=scale,
                            hflip=hflip, vflip=vflip, p=p, device=images.device,
                            dtype=images.dtype, generator=generator)
    return apply_affine(images, theta, padding)
