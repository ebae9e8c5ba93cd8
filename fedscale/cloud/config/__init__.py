"""Typed job configuration: key declarations (``keys``), the components' models
(``components``) and the composed ``JobConf`` (``job_conf``)."""
