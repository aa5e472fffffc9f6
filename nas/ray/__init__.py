"""The Ray room: the only package of nas/ that imports Ray (floor 7; tests/test_architecture.py checks).

* ``local``: the one way Ray is started (a local Ray on 127.0.0.1 only) or joined (``--address``, bounded);
* ``tune``: the ``trials`` placement -- a session's candidates as Ray Tune trials (ASHA, retries);
* ``pool``: the ``workers`` placement -- long-lived actors, each holding one built evaluator;
* ``train``: ``nas train`` on Ray Train's ``TorchTrainer``; ``supernet``: ``nas supernet train --workers N``.

Nothing here decides a rule of the search: the session (``nas.search.session``) does; this room only
runs work where Ray puts it.  The package itself imports nothing, so importing ``nas.ray.x`` pays for
Ray only when x runs.
"""
