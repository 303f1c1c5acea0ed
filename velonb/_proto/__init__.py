"""Generated protobuf and gRPC modules for the Velociraptor API subset in protos/."""
