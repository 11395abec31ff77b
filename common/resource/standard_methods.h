// The RPC boundary of the standard methods, written once. Generated service bases name their
// methods after the resource (CreateEvent, ListEvents, ...), so the overrides are spelled by
// these macros inside a CallbackService subclass that has `crud_` (a resource::Crud) for the
// resource and `pool_` (a WorkerPool*). Each hands the request to the generic method on the
// worker pool.
#pragma once

#include "common/resource/crud.h"
#include "common/rpc.h"

#define KP_METHOD_(ns, Method, crud, op)                                                 \
  ::grpc::ServerUnaryReactor* Method(::grpc::CallbackServerContext* ctx,                 \
                                     const ns::Method##Request* req,                     \
                                     ns::Method##Response* resp) override {              \
    return ::kp::Serve(ctx, *pool_, #Method, [=, this](const ::kp::CallInfo& call) {     \
      return crud.op(*req, resp, call);                                                  \
    });                                                                                  \
  }

#define KP_CREATE_METHOD(ns, R, crud) KP_METHOD_(ns, Create##R, crud, Create)
#define KP_BATCH_CREATE_METHOD(ns, Rs, crud) KP_METHOD_(ns, BatchCreate##Rs, crud, BatchCreate)
#define KP_GET_METHOD(ns, R, crud) KP_METHOD_(ns, Get##R, crud, Get)
#define KP_BATCH_GET_METHOD(ns, Rs, crud) KP_METHOD_(ns, BatchGet##Rs, crud, BatchGet)
#define KP_LIST_METHOD(ns, Rs, crud) KP_METHOD_(ns, List##Rs, crud, List)
#define KP_UPDATE_METHOD(ns, R, crud) KP_METHOD_(ns, Update##R, crud, Update)
#define KP_DELETE_METHOD(ns, R, crud) KP_METHOD_(ns, Delete##R, crud, Delete)
#define KP_UNDELETE_METHOD(ns, R, crud) KP_METHOD_(ns, Undelete##R, crud, Undelete)

// All eight: Create, BatchCreate, Get, BatchGet, List, Update, Delete, Undelete.
#define KP_STANDARD_METHODS(ns, R, Rs, crud) \
  KP_CREATE_METHOD(ns, R, crud)              \
  KP_BATCH_CREATE_METHOD(ns, Rs, crud)       \
  KP_GET_METHOD(ns, R, crud)                 \
  KP_BATCH_GET_METHOD(ns, Rs, crud)          \
  KP_LIST_METHOD(ns, Rs, crud)               \
  KP_UPDATE_METHOD(ns, R, crud)              \
  KP_DELETE_METHOD(ns, R, crud)              \
  KP_UNDELETE_METHOD(ns, R, crud)
