from node.cache.cache import Cache, CacheError

__all__ = ["Cache", "CacheError"]
