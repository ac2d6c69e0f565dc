"""Test-session settings.

One intra-op thread for torch, here and in every subprocess the tests start: the tests run
many small ops (a few hundred elements), where a second OpenMP thread costs more in
synchronisation than it gains; measured on this 2-core machine (while shared), tests/test_unbiased.py
takes 36 s with two threads and 10 s with one. Results do not depend on the thread count.
"""
import os

import torch

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
torch.set_num_threads(1)
