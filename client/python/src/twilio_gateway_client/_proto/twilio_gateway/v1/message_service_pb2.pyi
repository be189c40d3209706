from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CallMessage(_message.Message):
    __slots__ = ["account_sid", "call_sid", "content", "content_type", "cursor", "sequence_number", "sid", "timestamp"]
    ACCOUNT_SID_FIELD_NUMBER: _ClassVar[int]
    CALL_SID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    account_sid: str
    call_sid: str
    content: str
    content_type: str
    cursor: str
    sequence_number: int
    sid: str
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, sid: _Optional[str] = ..., account_sid: _Optional[str] = ..., call_sid: _Optional[str] = ..., sequence_number: _Optional[int] = ..., content: _Optional[str] = ..., content_type: _Optional[str] = ..., timestamp: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., cursor: _Optional[str] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ["account_sid", "call_sid", "date_created", "idempotency_key", "sid"]
    ACCOUNT_SID_FIELD_NUMBER: _ClassVar[int]
    CALL_SID_FIELD_NUMBER: _ClassVar[int]
    DATE_CREATED_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SID_FIELD_NUMBER: _ClassVar[int]
    account_sid: str
    call_sid: str
    date_created: _timestamp_pb2.Timestamp
    idempotency_key: str
    sid: str
    def __init__(self, account_sid: _Optional[str] = ..., call_sid: _Optional[str] = ..., sid: _Optional[str] = ..., date_created: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SendMessageRequest(_message.Message):
    __slots__ = ["account_sid", "call_sid", "content", "idempotency_key"]
    ACCOUNT_SID_FIELD_NUMBER: _ClassVar[int]
    CALL_SID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    account_sid: str
    call_sid: str
    content: str
    idempotency_key: str
    def __init__(self, call_sid: _Optional[str] = ..., content: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., account_sid: _Optional[str] = ...) -> None: ...

class WatchMessagesRequest(_message.Message):
    __slots__ = ["account_sid", "call_sid", "cursor", "from_oldest"]
    ACCOUNT_SID_FIELD_NUMBER: _ClassVar[int]
    CALL_SID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    FROM_OLDEST_FIELD_NUMBER: _ClassVar[int]
    account_sid: str
    call_sid: str
    cursor: str
    from_oldest: bool
    def __init__(self, account_sid: _Optional[str] = ..., call_sid: _Optional[str] = ..., cursor: _Optional[str] = ..., from_oldest: bool = ...) -> None: ...
