"""Segmentation networks (vessels, disc/cup, landmarks, lesions), their data, tasks and caches,
and the pipeline that runs them as pre-segmentation."""
