"""The descriptor pool that holds velonb's generated messages (kept apart from protobuf's default)."""

from google.protobuf import descriptor_pool

POOL = descriptor_pool.DescriptorPool()
