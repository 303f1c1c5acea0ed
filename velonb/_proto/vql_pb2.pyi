# Generated from protos/ by scripts/gen_protos.py; do not edit by hand.
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VQLRequest(_message.Message):
    __slots__ = ("Name", "VQL")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VQL_FIELD_NUMBER: _ClassVar[int]
    Name: str
    VQL: str
    def __init__(self, Name: _Optional[str] = ..., VQL: _Optional[str] = ...) -> None: ...

class VQLEnv(_message.Message):
    __slots__ = ("key", "value", "comment")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    comment: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ..., comment: _Optional[str] = ...) -> None: ...

class VQLTypeMap(_message.Message):
    __slots__ = ("column", "type")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    column: str
    type: str
    def __init__(self, column: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...

class VQLCollectorArgs(_message.Message):
    __slots__ = ("Query", "env", "max_row", "max_wait", "ops_per_second", "timeout", "tools", "heartbeat", "principal", "precondition", "cpu_limit", "iops_limit", "query_id", "total_queries", "expiry", "org_id", "progress_timeout", "max_row_buffer_size", "effective_principal")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    MAX_ROW_FIELD_NUMBER: _ClassVar[int]
    MAX_WAIT_FIELD_NUMBER: _ClassVar[int]
    OPS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    PRECONDITION_FIELD_NUMBER: _ClassVar[int]
    CPU_LIMIT_FIELD_NUMBER: _ClassVar[int]
    IOPS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_QUERIES_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_ROW_BUFFER_SIZE_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    Query: _containers.RepeatedCompositeFieldContainer[VQLRequest]
    env: _containers.RepeatedCompositeFieldContainer[VQLEnv]
    max_row: int
    max_wait: int
    ops_per_second: float
    timeout: int
    tools: _containers.RepeatedScalarFieldContainer[str]
    heartbeat: int
    principal: str
    precondition: str
    cpu_limit: float
    iops_limit: float
    query_id: int
    total_queries: int
    expiry: int
    org_id: str
    progress_timeout: float
    max_row_buffer_size: int
    effective_principal: str
    def __init__(self, Query: _Optional[_Iterable[_Union[VQLRequest, _Mapping]]] = ..., env: _Optional[_Iterable[_Union[VQLEnv, _Mapping]]] = ..., max_row: _Optional[int] = ..., max_wait: _Optional[int] = ..., ops_per_second: _Optional[float] = ..., timeout: _Optional[int] = ..., tools: _Optional[_Iterable[str]] = ..., heartbeat: _Optional[int] = ..., principal: _Optional[str] = ..., precondition: _Optional[str] = ..., cpu_limit: _Optional[float] = ..., iops_limit: _Optional[float] = ..., query_id: _Optional[int] = ..., total_queries: _Optional[int] = ..., expiry: _Optional[int] = ..., org_id: _Optional[str] = ..., progress_timeout: _Optional[float] = ..., max_row_buffer_size: _Optional[int] = ..., effective_principal: _Optional[str] = ...) -> None: ...

class VQLResponse(_message.Message):
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
    Response: str
    Columns: _containers.RepeatedScalarFieldContainer[str]
    Query: VQLRequest
    timestamp: int
    query_id: int
    part: int
    total_rows: int
    types: _containers.RepeatedCompositeFieldContainer[VQLTypeMap]
    log: str
    JSONLResponse: str
    query_start_row: int
    org_id: str
    uncompressed_size: int
    byte_offset: int
    CompressedJsonResponse: bytes
    def __init__(self, Response: _Optional[str] = ..., Columns: _Optional[_Iterable[str]] = ..., Query: _Optional[_Union[VQLRequest, _Mapping]] = ..., timestamp: _Optional[int] = ..., query_id: _Optional[int] = ..., part: _Optional[int] = ..., total_rows: _Optional[int] = ..., types: _Optional[_Iterable[_Union[VQLTypeMap, _Mapping]]] = ..., log: _Optional[str] = ..., JSONLResponse: _Optional[str] = ..., query_start_row: _Optional[int] = ..., org_id: _Optional[str] = ..., uncompressed_size: _Optional[int] = ..., byte_offset: _Optional[int] = ..., CompressedJsonResponse: _Optional[bytes] = ...) -> None: ...
