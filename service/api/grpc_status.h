// The one place an absl::Status becomes a grpc::Status: same code and message, and the status's
// detail payloads (see common/error_details.h) packed into a google.rpc.Status for the
// grpc-status-details-bin trailer.
#ifndef GATEWAY_API_GRPC_STATUS_H_
#define GATEWAY_API_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace gateway {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace gateway

#endif  // GATEWAY_API_GRPC_STATUS_H_
