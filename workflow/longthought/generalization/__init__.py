"""longthought.generalization"""
