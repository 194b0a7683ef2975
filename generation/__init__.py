"""toolace_mt.generation"""
