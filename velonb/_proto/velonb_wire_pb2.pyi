# Generated from protos/ by scripts/gen_protos.py; do not edit by hand.
from velonb._proto import vql_pb2 as _vql_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VQLResponseBytes(_message.Message):
    __slots__ = ("Response", "Columns", "Query", "timestamp", "query_id", "part", "total_rows", "types", "log", "JSONLResponse", "query_start_row", "org_id", "uncompressed_size", "byte_offset", "CompressedJsonResponse")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROWS_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    JSONLRESPONSE_FIELD_NUMBER: _ClassVar[int]
    QUERY_START_ROW_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    UNCOMPRESSED_SIZE_FIELD_NUMBER: _ClassVar[int]
    BYTE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    COMPRESSEDJSONRESPONSE_FIELD_NUMBER: _ClassVar[int]
    Response: bytes
    Columns: _containers.RepeatedScalarFieldContainer[str]
    Query: _vql_pb2.VQLRequest
    timestamp: int
    query_id: int
    part: int
    total_rows: int
    types: _containers.RepeatedCompositeFieldContainer[_vql_pb2.VQLTypeMap]
    log: str
    JSONLResponse: str
    query_start_row: int
    org_id: str
    uncompressed_size: int
    byte_offset: int
    CompressedJsonResponse: bytes
    def __init__(self, Response: _Optional[bytes] = ..., Columns: _Optional[_Iterable[str]] = ..., Query: _Optional[_Union[_vql_pb2.VQLRequest, _Mapping]] = ..., timestamp: _Optional[int] = ..., query_id: _Optional[int] = ..., part: _Optional[int] = ..., total_rows: _Optional[int] = ..., types: _Optional[_Iterable[_Union[_vql_pb2.VQLTypeMap, _Mapping]]] = ..., log: _Optional[str] = ..., JSONLResponse: _Optional[str] = ..., query_start_row: _Optional[int] = ..., org_id: _Optional[str] = ..., uncompressed_size: _Optional[int] = ..., byte_offset: _Optional[int] = ..., CompressedJsonResponse: _Optional[bytes] = ...) -> None: ...
