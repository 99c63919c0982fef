"""Tree optimization shared by the offline advice (`specdyn budget`) and the adaptive engine (`--tree
adaptive`): Sequoia's dynamic program (constant and depth-dependent acceptance), the measured cost
model and the price of a step, and online Beta beliefs on acceptance.

Pure (numpy and scipy, no torch, no run folders): the engine may import it, and so may the analyses.
"""
