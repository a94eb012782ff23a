"""``bayesncl browse``: a static, offline HTML feature browser of a trained encoder
(:func:`~bayesncl.browse.site.build_site`); ``python -m bayesncl.browse.screenshot`` takes the
README's picture of it in a headless Chromium."""
