#include "api/grpc_status.h"

#include <map>
#include <string>

#include "google/rpc/status.pb.h"

namespace gateway {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  google::rpc::Status rich;
  rich.set_code(static_cast<int>(status.code()));
  rich.set_message(std::string(status.message()));
  // Payloads come out in hash order; sorted, the trailer is the same for the same error.
  std::map<std::string, std::string> details;
  status.ForEachPayload([&details](absl::string_view type_url, const absl::Cord& payload) {
    details.emplace(std::string(type_url), std::string(payload));
  });
  for (auto& [type_url, value] : details) {
    auto* any = rich.add_details();
    any->set_type_url(type_url);
    any->set_value(std::move(value));
  }
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()),
                      rich.SerializeAsString());
}

}  // namespace gateway
