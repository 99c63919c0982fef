"""`specdyn sweep`: a grid of run configurations (:mod:`.spec`), one run folder per cell with an index
(:mod:`.runner`), and the cells side by side per domain (:mod:`.report`)."""
