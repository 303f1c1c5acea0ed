"""The descriptor pool of velonb's generated messages (not protobuf's default)."""

from google.protobuf import descriptor_pool

POOL = descriptor_pool.DescriptorPool()
