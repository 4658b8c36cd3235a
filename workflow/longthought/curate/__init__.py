"""longthought.curate: trace filters, dedup, decontamination, formatting, the funnel.

Answer checking lives in `longthought.answers` (shared with problems, evaluate, generalization).

What other parts may use:
    curate    (pipeline: the `longthought curate` stage)
"""

__all__ = ["curate"]


def curate(*args, **kwargs):  # imported lazily: pandas/pyarrow are not needed to import this
    """See `longthought.curate.pipeline.curate`."""
    from longthought.curate.pipeline import curate as _curate

    return _curate(*args, **kwargs)
