"""Generated protobuf/gRPC modules for the Velociraptor API subset in protos/."""
