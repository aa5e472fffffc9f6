"""effnas: configs, costs, data, proxy training, objective, the Ray Tune driver and the CLI."""

__version__ = "0.1.0"
