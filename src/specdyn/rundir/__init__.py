"""The run folder: the only writer (:mod:`.writer`) and the only reader (:mod:`.reader`) of its files."""
