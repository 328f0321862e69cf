"""stylevid: paint videos, 360° panoramas and photos in the style of an artwork."""
from __future__ import annotations

__version__ = "0.1.0"


def stylize_image(*args, **kwargs):
    """See :func:`stylevid.pipelines.still.stylize_image`."""
    from .pipelines.still import stylize_image as _f

    return _f(*args, **kwargs)


def stylize_video(*args, **kwargs):
    """See :func:`stylevid.pipelines.video.stylize_video`."""
    from .pipelines.video import stylize_video as _f

    return _f(*args, **kwargs)
