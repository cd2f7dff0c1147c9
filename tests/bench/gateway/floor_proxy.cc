// The floor under the gateway's overhead: a pass-through proxy that does
// nothing but forward unary calls (all metadata, the message, the status) to
// one backend over loopback. No authentication, no audit, no metrics. The
// gateway bench runs it next to the real gateway so the cost of "one more
// gRPC hop on this machine" is measured in the same run, with two threading
// models:
//
//   callback: the generic callback API (what the gateway used in session 1);
//             every reaction runs on gRPC's executor, a thread hand-off each.
//   async:    the completion-queue API; the thread that polls an event also
//             handles it, and the backend call completes on the same queue.
//
//   gateway_floor_proxy --mode=callback|async --backend=HOST:PORT --port_file=PATH
#include <sys/prctl.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

namespace {

std::string Arg(int argc, char** argv, const std::string& name) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind(prefix, 0) == 0) return a.substr(prefix.size());
  }
  return "";
}

void CopyMetadata(const std::multimap<grpc::string_ref, grpc::string_ref>& from, grpc::ClientContext& to) {
  for (const auto& [k, v] : from) {
    std::string key(k.data(), k.size());
    if (key.empty() || key[0] == ':' || key.rfind("grpc-", 0) == 0 || key == "user-agent" || key == "te" ||
        key == "content-type" || key == "host") {
      continue;
    }
    to.AddMetadata(key, std::string(v.data(), v.size()));
  }
}

// --- callback API -----------------------------------------------------------

class CallbackCall final : public grpc::ServerGenericBidiReactor, public grpc::ClientUnaryReactor {
 public:
  CallbackCall(grpc::GenericStub* stub, grpc::GenericCallbackServerContext* ctx) : stub_(stub), ctx_(ctx) {
    StartRead(&request_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"));
      return;
    }
    CopyMetadata(ctx_->client_metadata(), client_);
    client_.set_deadline(ctx_->deadline());
    stub_->PrepareUnaryCall(&client_, ctx_->method(), grpc::StubOptions(), &request_, &response_, this);
    grpc::ClientUnaryReactor::StartCall();
  }
  void OnDone(const grpc::Status& status) override {
    if (status.ok()) {
      StartWriteAndFinish(&response_, grpc::WriteOptions(), status);
    } else {
      Finish(status);
    }
  }
  void OnDone() override { delete this; }

 private:
  grpc::GenericStub* stub_;
  grpc::GenericCallbackServerContext* ctx_;
  grpc::ClientContext client_;
  grpc::ByteBuffer request_, response_;
};

class CallbackProxy final : public grpc::CallbackGenericService {
 public:
  explicit CallbackProxy(std::shared_ptr<grpc::Channel> channel) : stub_(channel) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new CallbackCall(&stub_, ctx);
  }

 private:
  grpc::GenericStub stub_;
};

// --- completion-queue API ---------------------------------------------------

class AsyncCall {
 public:
  AsyncCall(grpc::AsyncGenericService* service, grpc::GenericStub* stub, grpc::ServerCompletionQueue* cq)
      : service_(service), stub_(stub), cq_(cq), stream_(&ctx_) {
    service_->RequestCall(&ctx_, &stream_, cq_, cq_, this);
  }
  void Proceed(bool ok) {
    switch (state_) {
      case kRequested:
        if (!ok) {
          delete this;
          return;
        }
        new AsyncCall(service_, stub_, cq_);
        state_ = kReading;
        stream_.Read(&request_, this);
        return;
      case kReading:
        if (!ok) {
          state_ = kFinishing;
          stream_.Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"), this);
          return;
        }
        CopyMetadata(ctx_.client_metadata(), client_);
        client_.set_deadline(ctx_.deadline());
        upstream_ = stub_->PrepareUnaryCall(&client_, ctx_.method(), request_, cq_);
        upstream_->StartCall();
        state_ = kUpstream;
        upstream_->Finish(&response_, &status_, this);
        return;
      case kUpstream:
        state_ = kFinishing;
        if (status_.ok()) {
          stream_.WriteAndFinish(response_, grpc::WriteOptions(), status_, this);
        } else {
          stream_.Finish(status_, this);
        }
        return;
      case kFinishing:
        delete this;
        return;
    }
  }

 private:
  enum State { kRequested, kReading, kUpstream, kFinishing };
  grpc::AsyncGenericService* service_;
  grpc::GenericStub* stub_;
  grpc::ServerCompletionQueue* cq_;
  grpc::GenericServerContext ctx_;
  grpc::GenericServerAsyncReaderWriter stream_;
  grpc::ClientContext client_;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> upstream_;
  grpc::ByteBuffer request_, response_;
  grpc::Status status_;
  State state_ = kRequested;
};

}  // namespace

int main(int argc, char** argv) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  const std::string mode = Arg(argc, argv, "mode");
  const std::string backend = Arg(argc, argv, "backend");
  const std::string port_file = Arg(argc, argv, "port_file");
  auto channel = grpc::CreateChannel(backend, grpc::InsecureChannelCredentials());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  std::unique_ptr<CallbackProxy> callback;
  grpc::AsyncGenericService async_service;
  grpc::GenericStub stub(channel);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  const int threads = 2;
  if (mode == "callback") {
    callback = std::make_unique<CallbackProxy>(channel);
    builder.RegisterCallbackGenericService(callback.get());
  } else {
    builder.RegisterAsyncGenericService(&async_service);
    for (int i = 0; i < threads; ++i) cqs.push_back(builder.AddCompletionQueue());
  }
  auto server = builder.BuildAndStart();
  if (!server) return 1;
  std::ofstream(port_file) << port << "\n";
  if (mode == "callback") {
    server->Wait();
    return 0;
  }
  std::vector<std::thread> pollers;
  for (auto& cq : cqs) {
    for (int i = 0; i < 16; ++i) new AsyncCall(&async_service, &stub, cq.get());
    pollers.emplace_back([cq = cq.get()] {
      void* tag;
      bool ok;
      while (cq->Next(&tag, &ok)) static_cast<AsyncCall*>(tag)->Proceed(ok);
    });
  }
  for (auto& t : pollers) t.join();
  return 0;
}
