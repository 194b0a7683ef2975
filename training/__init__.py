"""toolace_mt.training"""
