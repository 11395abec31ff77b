// ReflectionCall: see reflection.h. Answers as gRPC's own ProtoServerReflection does.
#include "gateway/reflection.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include "absl/strings/str_cat.h"
#include "gateway/unary_call.h"
#include "grpc/reflection/kp_reflection.pb.h"

namespace kp::gateway {
namespace {

namespace rv1 = kp::reflection::v1alpha;
using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;

}  // namespace

ReflectionCall::ReflectionCall(grpc::GenericCallbackServerContext* ctx, const std::vector<std::string>* services,
                               std::string principal, CallBounds bounds)
    : ctx_(ctx), services_(services), hold_(std::move(principal), std::move(bounds)) {
  StartRead(&request_);
}

void ReflectionCall::OnReadDone(bool ok) {
  if (!ok) {
    Finish(::grpc::Status::OK);  // the client has half-closed (or gone)
    return;
  }
  response_ = ToByteBuffer(Answer(ToString(request_)));
  request_.Clear();
  if (!hold_.HoldAnswer(response_.Length())) {
    Finish(::grpc::Status(::grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "the gateway holds too many answers not yet read by this caller; read them first"));
    return;
  }
  hold_.Sending(ctx_);
  StartWrite(&response_);
}

void ReflectionCall::OnWriteDone(bool ok) {
  hold_.Sent();
  response_.Clear();
  if (!ok) {
    Finish(::grpc::Status(::grpc::StatusCode::CANCELLED, "the client went away"));
    return;
  }
  StartRead(&request_);
}

std::string ReflectionCall::Answer(const std::string& bytes) {
  rv1::ServerReflectionRequest request;
  rv1::ServerReflectionResponse response;
  auto error = [&](::grpc::StatusCode code, std::string message) {
    response.mutable_error_response()->set_error_code(code);
    response.mutable_error_response()->set_error_message(std::move(message));
  };
  if (!request.ParseFromString(bytes)) {
    error(::grpc::StatusCode::INVALID_ARGUMENT, "the request is not a valid grpc.reflection.v1alpha.ServerReflectionRequest");
    return response.SerializeAsString();
  }
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  // A file, and each of its dependencies not sent on this stream yet.
  auto send_file = [&](const FileDescriptor* file) {
    auto* out = response.mutable_file_descriptor_response();
    std::vector<const FileDescriptor*> pending{file};
    bool first = true;
    while (!pending.empty()) {
      const FileDescriptor* f = pending.back();
      pending.pop_back();
      if (!first && !sent_.insert(f->name()).second) continue;
      if (first) sent_.insert(f->name());
      first = false;
      google::protobuf::FileDescriptorProto proto;
      f->CopyTo(&proto);
      out->add_file_descriptor_proto(proto.SerializeAsString());
      for (int i = 0; i < f->dependency_count(); ++i) pending.push_back(f->dependency(i));
    }
  };
  switch (request.message_request_case()) {
    case rv1::ServerReflectionRequest::kListServices:
      for (const auto& name : *services_) response.mutable_list_services_response()->add_service()->set_name(name);
      break;
    case rv1::ServerReflectionRequest::kFileByFilename:
      if (const FileDescriptor* f = pool->FindFileByName(request.file_by_filename())) {
        send_file(f);
      } else {
        error(::grpc::StatusCode::NOT_FOUND, absl::StrCat("no file ", request.file_by_filename()));
      }
      break;
    case rv1::ServerReflectionRequest::kFileContainingSymbol:
      if (const FileDescriptor* f = pool->FindFileContainingSymbol(request.file_containing_symbol())) {
        send_file(f);
      } else {
        error(::grpc::StatusCode::NOT_FOUND, absl::StrCat("no symbol ", request.file_containing_symbol()));
      }
      break;
    case rv1::ServerReflectionRequest::kFileContainingExtension: {
      const auto& ext = request.file_containing_extension();
      const auto* type = pool->FindMessageTypeByName(ext.containing_type());
      const auto* field = type ? pool->FindExtensionByNumber(type, ext.extension_number()) : nullptr;
      if (field != nullptr) {
        send_file(field->file());
      } else {
        error(::grpc::StatusCode::NOT_FOUND, absl::StrCat("no extension ", ext.extension_number(), " of ", ext.containing_type()));
      }
      break;
    }
    case rv1::ServerReflectionRequest::kAllExtensionNumbersOfType:
      if (const auto* type = pool->FindMessageTypeByName(request.all_extension_numbers_of_type())) {
        std::vector<const google::protobuf::FieldDescriptor*> extensions;
        pool->FindAllExtensions(type, &extensions);
        auto* out = response.mutable_all_extension_numbers_response();
        out->set_base_type_name(type->full_name());
        for (const auto* e : extensions) out->add_extension_number(e->number());
      } else {
        error(::grpc::StatusCode::NOT_FOUND, absl::StrCat("no type ", request.all_extension_numbers_of_type()));
      }
      break;
    default:
      error(::grpc::StatusCode::UNIMPLEMENTED, "unknown reflection request");
  }
  return response.SerializeAsString();
}

}  // namespace kp::gateway
