"""toolace_mt.evaluation"""
