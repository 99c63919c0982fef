"""The run folder: its layout (:mod:`.layout`), the typed manifest (:mod:`.manifest`), the only writer
(:mod:`.writer`, ``RunWriter``) and the only reader (:mod:`.reader`, ``load_run``) of its files."""
