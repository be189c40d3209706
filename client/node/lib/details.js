// The rich details of a failed call: the `grpc-status-details-bin` trailer is a serialized
// google.rpc.Status whose details are google.protobuf.Any messages. Decoded here once, into
// typed values (ErrorInfo, BadRequest, RetryInfo, TwilioError) and into JSON for printing.
"use strict";

const { loadDetailTypes } = require("./protos");
const { detailToJson } = require("./json");

const STATUS_DETAILS_KEY = "grpc-status-details-bin";

// The google.rpc.Status of a failed call (a grpc-js error, or anything with its `metadata`), and
// its details unpacked from google.protobuf.Any: [{typeUrl, type, message}] where type is the
// protobufjs Type, or null (message: the bytes) for a detail type not known here.
function decodeStatusDetails(error, root = loadDetailTypes()) {
  const values = error.metadata?.get(STATUS_DETAILS_KEY) ?? [];
  if (values.length === 0) return { status: null, details: [] };
  const Status = root.lookupType("google.rpc.Status");
  const status = Status.decode(values[values.length - 1]);
  const details = status.details.map((any) => {
    const typeName = any.type_url.slice(any.type_url.lastIndexOf("/") + 1);
    let type = null;
    try {
      type = root.lookupType(typeName);
    } catch {
      // unknown detail type
    }
    return { typeUrl: any.type_url, type, message: type ? type.decode(any.value) : any.value };
  });
  return { status, details };
}

// A google.protobuf.Duration in milliseconds. Its seconds may be a Long (int64).
function durationMs({ seconds, nanos }) {
  return Number(String(seconds ?? 0)) * 1000 + Math.round((nanos ?? 0) / 1e6);
}

// What a caller acts on, from the decoded details. Absent details are null (or empty); a second
// detail of one type is ignored, as in the C++ client.
function typedDetails({ status, details }) {
  const find = (fullName) => details.find(({ type }) => type?.fullName === fullName)?.message;
  const errorInfo = find(".google.rpc.ErrorInfo");
  const badRequest = find(".google.rpc.BadRequest");
  const retryInfo = find(".google.rpc.RetryInfo");
  const twilioError = find(".twilio_gateway.v1.TwilioError");
  return {
    statusCode: status ? status.code : null,
    errorInfo: errorInfo
      ? { reason: errorInfo.reason, domain: errorInfo.domain, metadata: { ...errorInfo.metadata } }
      : null,
    fieldViolations: (badRequest?.field_violations ?? []).map(({ field, description }) => ({
      field,
      description,
    })),
    retryDelayMs: retryInfo?.retry_delay ? durationMs(retryInfo.retry_delay) : null,
    twilioError: twilioError
      ? {
          code: twilioError.code,
          message: twilioError.message,
          moreInfo: twilioError.more_info,
          httpStatus: twilioError.http_status,
        }
      : null,
    details: details.map(detailToJson),
  };
}

module.exports = { STATUS_DETAILS_KEY, decodeStatusDetails, typedDetails };
