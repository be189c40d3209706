from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

CALLBACK_METHOD_GET: CallbackMethod
CALLBACK_METHOD_POST: CallbackMethod
CALLBACK_METHOD_UNSPECIFIED: CallbackMethod
DESCRIPTOR: _descriptor.FileDescriptor

class CreateSubscriptionRequest(_message.Message):
    __slots__ = ["account_sid", "call_sid", "callback", "idempotency_key", "method"]
    ACCOUNT_SID_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    CALL_SID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    account_sid: str
    call_sid: str
    callback: str
    idempotency_key: str
    method: CallbackMethod
    def __init__(self, call_sid: _Optional[str] = ..., callback: _Optional[str] = ..., method: _Optional[_Union[CallbackMethod, str]] = ..., idempotency_key: _Optional[str] = ..., account_sid: _Optional[str] = ...) -> None: ...

class DeleteSubscriptionRequest(_message.Message):
    __slots__ = ["account_sid", "call_sid", "sid"]
    ACCOUNT_SID_FIELD_NUMBER: _ClassVar[int]
    CALL_SID_FIELD_NUMBER: _ClassVar[int]
    SID_FIELD_NUMBER: _ClassVar[int]
    account_sid: str
    call_sid: str
    sid: str
    def __init__(self, call_sid: _Optional[str] = ..., sid: _Optional[str] = ..., account_sid: _Optional[str] = ...) -> None: ...

class DeleteSubscriptionResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class Subscription(_message.Message):
    __slots__ = ["account_sid", "call_sid", "date_created", "idempotency_key", "sid", "uri"]
    ACCOUNT_SID_FIELD_NUMBER: _ClassVar[int]
    CALL_SID_FIELD_NUMBER: _ClassVar[int]
    DATE_CREATED_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    account_sid: str
    call_sid: str
    date_created: _timestamp_pb2.Timestamp
    idempotency_key: str
    sid: str
    uri: str
    def __init__(self, account_sid: _Optional[str] = ..., call_sid: _Optional[str] = ..., sid: _Optional[str] = ..., date_created: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., uri: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class TwilioError(_message.Message):
    __slots__ = ["code", "http_status", "message", "more_info"]
    CODE_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MORE_INFO_FIELD_NUMBER: _ClassVar[int]
    code: int
    http_status: int
    message: str
    more_info: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., more_info: _Optional[str] = ..., http_status: _Optional[int] = ...) -> None: ...

class CallbackMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
