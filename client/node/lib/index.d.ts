// Types of @twilio-gateway/client (lib/index.js), written by hand over the contract
// (proto/twilio_gateway/v1/subscription_service.proto and message_service.proto).

import type {
  ChannelCredentials,
  ChannelOptions,
  ServiceClientConstructor,
  ServiceError,
  status as grpcStatus,
} from "@grpc/grpc-js";
import type { Root, Type } from "protobufjs";

/** A PEM certificate or key: its text, or its bytes. */
export type Pem = string | Buffer;

/** The channel's TLS: plaintext without a CA; each PEM inline or from a file (read at once). */
export interface TlsOptions {
  /** CA bundle the gateway's certificate is verified against; enables TLS. */
  ca?: Pem;
  caFile?: string;
  /** Client certificate for mutual TLS (needs the key and a CA). */
  cert?: Pem;
  certFile?: string;
  /** The client certificate's private key. */
  key?: Pem;
  keyFile?: string;
}

export interface ClientOptions extends TlsOptions {
  /** Sent as "authorization: Bearer <token>" on every call; empty or absent: none. */
  token?: string;
  /** Each call's deadline unless create() is given another; default 10000. */
  timeoutMs?: number;
  /** grpc-js channel options (keepalive, message sizes, ...). */
  channelOptions?: ChannelOptions;
}

export type CallbackMethod = "POST" | "GET";

export interface CreateSubscriptionRequest {
  /** The call: `^CA[0-9a-fA-F]{32}$`. The gateway checks it (BadRequest names `call_sid`). */
  callSid: string;
  /**
   * Absolute http or https URL Twilio sends the messages to. Absent or empty: the gateway decides
   * (with its webhook receiver, its own public URL: then watch(); without, INVALID_ARGUMENT).
   */
  callback?: string;
  /** How Twilio calls `callback`; absent: Twilio's default, POST. */
  method?: CallbackMethod;
  /** Identifies this create across retries; generated (UUID v4) before sending when absent or empty. */
  idempotencyKey?: string;
  /** A subaccount (`AC...`); absent: the gateway's own account. */
  accountSid?: string;
}

export interface DeleteSubscriptionRequest {
  /** The call the subscription belongs to: `^CA[0-9a-fA-F]{32}$`. */
  callSid: string;
  /** The subscription, as create() returned it: `^ZY[0-9a-fA-F]{32}$`. */
  sid: string;
  /** A subaccount (`AC...`); absent: the gateway's own account. */
  accountSid?: string;
}

export interface SendMessageRequest {
  /** The call whose Voice SDK receives the message: `^CA[0-9a-fA-F]{32}$`. */
  callSid: string;
  /** One JSON document as text, at most 4096 bytes (use JSON.stringify). */
  content: string;
  /** Identifies this send across retries (the message goes at most once); generated (UUID v4) before sending when absent or empty. */
  idempotencyKey?: string;
  /** A subaccount (`AC...`); absent: the gateway's own account. */
  accountSid?: string;
}

export interface WatchMessagesRequest {
  /** Only this call's messages: `^CA[0-9a-fA-F]{32}$`; absent: every call of the account. */
  callSid?: string;
  /** Only this account's (`AC...`); absent: the gateway's own account. */
  accountSid?: string;
  /** Resume after this message (a CallMessage.cursor received earlier, on any replica). */
  cursor?: string;
  /** Without a cursor: start with the oldest message the gateway keeps, not the next one it receives. */
  fromOldest?: boolean;
}

export interface WatchOptions {
  /** A deadline for the whole stream; absent: none (a Watch does not end by itself). */
  timeoutMs?: number;
  /** Ends the stream without an error. */
  signal?: AbortSignal;
}

/** twilio_gateway.v1.CallMessage: a message a Voice SDK client sent on a call, as Twilio delivered it. */
export interface CallMessage {
  /** `KX` + 32 hex digits; a redelivery by Twilio is not streamed again. */
  sid: string;
  accountSid: string;
  callSid: string;
  /** Twilio's per call, from 0; a gap is a message Twilio did not deliver. */
  sequenceNumber: number;
  /** The SDK's JSON, as text (JSON.parse it). */
  content: string;
  /** E.g. "application/json". */
  contentType: string;
  /** When Twilio says it was sent; null when unknown. */
  timestamp: Date | null;
  /** Pass as WatchMessagesRequest.cursor to resume after this message. */
  cursor: string;
}

/**
 * A Watch in progress: at run time a stream.Readable in object mode of CallMessage (so also an
 * async iterator); declared here by the part of it a watcher uses, typed. It does not end by
 * itself: it fails with the GatewayError that ended it (see resumeCursor), or ends without error
 * after cancel(), destroy() or the AbortSignal.
 */
export class MessageStream implements AsyncIterable<CallMessage> {
  private constructor();
  /** The last message's cursor, else the one the stream started after; null when neither. */
  readonly cursor: string | null;
  /** Ends the stream without an error. */
  cancel(): void;
  destroy(error?: Error): this;
  readonly destroyed: boolean;
  pause(): this;
  resume(): this;
  read(size?: number): CallMessage | null;
  [Symbol.asyncIterator](): AsyncIterableIterator<CallMessage>;
  on(event: "data", listener: (message: CallMessage) => void): this;
  on(event: "error", listener: (error: GatewayError) => void): this;
  on(event: "end" | "close", listener: () => void): this;
  once(event: "data", listener: (message: CallMessage) => void): this;
  once(event: "error", listener: (error: GatewayError) => void): this;
  once(event: "end" | "close", listener: () => void): this;
  off(event: "data" | "error" | "end" | "close", listener: (...args: any[]) => void): this;
}

export interface CallOptions {
  /** The deadline of the whole call, the gateway's retries included. */
  timeoutMs?: number;
  /** Cancels the call (GatewayError CANCELLED). */
  signal?: AbortSignal;
}

/** twilio_gateway.v1.Subscription, and how this call got it. */
export interface Subscription {
  accountSid: string;
  callSid: string;
  /** `ZY` + 32 hex digits: needed to delete the subscription. */
  sid: string;
  /** When Twilio created it; null when Twilio left it out. */
  dateCreated: Date | null;
  uri: string;
  idempotencyKey: string;
  /** True when the gateway replayed an earlier call's result for this key (nothing new was created). */
  replayed: boolean;
  /** The gateway's id for this call (x-request-id), as in its audit log; "" when not sent. */
  requestId: string;
}

/** A successful delete: the subscription is gone. */
export interface Deleted {
  /** The gateway's id for this call (x-request-id), as in its audit log; "" when not sent. */
  requestId: string;
}

/** twilio_gateway.v1.Message, and how this call got it. */
export interface Message {
  accountSid: string;
  callSid: string;
  /** `KX` + 32 hex digits. */
  sid: string;
  /** When Twilio created it; null when Twilio left it out. */
  dateCreated: Date | null;
  idempotencyKey: string;
  /** True when the gateway replayed an earlier call's result for this key (nothing new was sent). */
  replayed: boolean;
  requestId: string;
}

/** The call an error came from. */
export type Operation = "create" | "delete" | "send" | "watch";

export interface ErrorInfo {
  reason: string;
  domain: string;
  /** idempotency_key, attempts, subscription_may_exist or message_may_exist, replayed, ... */
  metadata: Record<string, string>;
}

export interface FieldViolation {
  /** The request field, by its proto name (e.g. "call_sid"). */
  field: string;
  description: string;
}

/** twilio_gateway.v1.TwilioError: what Twilio answered. */
export interface TwilioError {
  code: number;
  message: string;
  moreInfo: string;
  httpStatus: number;
}

/** A detail of the google.rpc.Status as proto JSON, e.g. {"@type": ".../google.rpc.ErrorInfo", reason, ...}. */
export interface DetailJson {
  "@type": string;
  [field: string]: unknown;
}

export interface GatewayErrorFields {
  code: number;
  statusMessage?: string;
  idempotencyKey: string;
  errorInfo?: ErrorInfo | null;
  fieldViolations?: FieldViolation[];
  retryDelayMs?: number | null;
  twilioError?: TwilioError | null;
  details?: DetailJson[];
  statusCode?: number | null;
  requestId?: string;
  /** Default "create". */
  operation?: Operation;
  resumeCursor?: string | null;
  cause?: unknown;
}

/** The report the CLIs print for an error (GatewayError.toJSON()). */
export interface GatewayErrorReport {
  code: string;
  code_number: number;
  message: string;
  /** Absent for a delete or a watch, which have no key. */
  idempotency_key?: string;
  /** A watch's resumeCursor, when it has one. */
  resume_cursor?: string;
  details: DetailJson[];
  status_code_mismatch?: number;
}

/** A failed call, with the gateway's details decoded. `message` is "CODE_NAME: statusMessage". */
export class GatewayError extends Error {
  constructor(fields: GatewayErrorFields);
  readonly name: "GatewayError";
  /** The gRPC status code (compare with `status.INVALID_ARGUMENT` and so on). */
  readonly code: number;
  /** "INVALID_ARGUMENT" and so on. */
  readonly codeName: string;
  /** The gateway's message (or grpc-js's, when the gateway never answered). */
  readonly statusMessage: string;
  /** The call that failed. */
  readonly operation: Operation;
  /** The key a create or send sent, the caller's or the generated one: what to retry with. "" for a delete or a watch. */
  readonly idempotencyKey: string;
  /**
   * For a watch: where to watch again, the cursor of the last message the stream gave out (or the
   * one it started after), else the gateway's errorInfo.metadata.cursor (where a watch of new
   * messages that got none started); null when there is none.
   */
  readonly resumeCursor: string | null;
  readonly errorInfo: ErrorInfo | null;
  /** errorInfo's reason, "" without ErrorInfo. */
  readonly reason: string;
  /** False only when the gateway says no attempt can have created the subscription. */
  readonly subscriptionMayExist: boolean;
  /** For a send: false only when the gateway says no attempt can have sent the message. */
  readonly messageMayExist: boolean;
  /** Upstream attempts, from ErrorInfo; null when not given. */
  readonly attempts: number | null;
  /** The gateway replayed this stored answer for the key. */
  readonly replayed: boolean;
  /** google.rpc.BadRequest's field violations; empty when none. */
  readonly fieldViolations: FieldViolation[];
  /** google.rpc.RetryInfo's delay: wait this long before retrying; null when not given. */
  readonly retryDelayMs: number | null;
  readonly twilioError: TwilioError | null;
  /** Every detail as proto JSON, for logs. */
  readonly details: DetailJson[];
  /** The code inside google.rpc.Status; null without one. */
  readonly statusCode: number | null;
  readonly requestId: string;
  /** What to do next (nextStep(codeName, reason, operation)). */
  readonly nextStep: string;
  toJSON(): GatewayErrorReport;
}

export class SubscriptionClient {
  /** target: "host:port". Throws TypeError for contradictory options, Error for an unreadable PEM file. */
  constructor(target: string, options?: ClientOptions);
  /** Creates the subscription; rejects with GatewayError when the call fails (TypeError for a malformed request). */
  create(request: CreateSubscriptionRequest, options?: CallOptions): Promise<Subscription>;
  /** Deletes the subscription; resolves once it is gone. Retrying a delete is always safe (no key). */
  delete(request: DeleteSubscriptionRequest, options?: CallOptions): Promise<Deleted>;
  /** Sends a message to the Voice SDK on the call (MessageService.Send, same channel). */
  send(request: SendMessageRequest, options?: CallOptions): Promise<Message>;
  /** Streams the messages the SDKs send (MessageService.Watch); throws TypeError for a malformed request. */
  watch(request?: WatchMessagesRequest, options?: WatchOptions): MessageStream;
  close(): void;
}

/** What to do next after an error of `operation` (default "create"), by the code name and the ErrorInfo reason. */
export function nextStep(code: string, reason: string, operation?: Operation): string;

/** "INVALID_ARGUMENT" and so on; "UNKNOWN" for numbers outside the canonical codes. */
export function statusCodeName(code: number): string;

/** gRPC's status codes (@grpc/grpc-js's `status`). */
export const status: typeof grpcStatus;

/** A Subscription as twilio_gateway.v1.Subscription's JSON (proto field names), as the CLI prints it. */
export function subscriptionToJson(subscription: Subscription): Record<string, string>;

// Lower level, for calling the service with @grpc/grpc-js directly.

/** The package's copy of the .proto files. */
export const PROTO_DIR: string;

export function channelCredentials(options?: TlsOptions): ChannelCredentials;

/** The SubscriptionService client constructor (messages with the proto's snake_case names). */
export function loadService(protoDir?: string): ServiceClientConstructor;

/** The MessageService client constructor. */
export function loadMessageService(protoDir?: string): ServiceClientConstructor;

/** google.rpc.Status, the google.rpc details and TwilioError as protobufjs types. */
export function loadDetailTypes(protoDir?: string): Root;

export interface DecodedDetail {
  typeUrl: string;
  /** null for a detail type not known here (message: its bytes). */
  type: Type | null;
  message: unknown;
}

/** The google.rpc.Status in an error's `grpc-status-details-bin` trailer, and its details. */
export function decodeStatusDetails(
  error: Pick<ServiceError, "metadata">,
  root?: Root,
): { status: { code: number; message: string } | null; details: DecodedDetail[] };

export function detailToJson(detail: DecodedDetail): DetailJson;

export function messageToJson(type: Type, message: unknown): Record<string, unknown>;
