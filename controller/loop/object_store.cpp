#include "controller/loop/object_store.hpp"

#include "controller/engine/client.hpp"
#include "controller/objects/swarm_objects.hpp"

namespace lifeboat::controller {

namespace {

class swarm_store final : public object_store {
 public:
  explicit swarm_store(const engine::client& client) : client_(client) {}

  engine::result<std::vector<objects::object_source>> list() const override {
    return objects::list_object_configs(client_);
  }

  engine::result<objects::object_source> get(const std::string& id) const override {
    auto c = client_.inspect_config(id);
    if (!c) {
      return c.error();
    }
    return objects::object_source{c->id,         c->version,       c->name,
                                  c->created_at, c->config_labels, std::move(c->data)};
  }

  engine::result<void> create(const std::string& name, const std::string& data,
                              const objects::label_map& labels) override {
    auto created = client_.create_config(name, data, labels);
    if (!created) {
      return created.error();
    }
    return {};
  }

  engine::result<void> update_labels(
      const std::string& id, const std::function<void(objects::label_map&)>& change) override {
    return objects::update_labels(client_, id, change);
  }

  engine::result<void> remove(const std::string& id) override { return client_.remove_config(id); }

 private:
  const engine::client& client_;
};

}  // namespace

std::unique_ptr<object_store> make_swarm_store(const engine::client& client) {
  return std::make_unique<swarm_store>(client);
}

}  // namespace lifeboat::controller
