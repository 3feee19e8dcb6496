require_relative "boot"

require "rails"
require "active_record/railtie"
require "action_controller/railtie"
require "securerandom"

module RailsApp
  class Application < Rails::Application
    config.load_defaults 6.1

    config.eager_load = true
    config.cache_classes = true
    config.consider_all_requests_local = false

    # No sessions or cookies are used; a key is still needed at boot.
    config.secret_key_base = ENV["SECRET_KEY_BASE"] || SecureRandom.hex(64)

    $stdout.sync = true
    config.logger = ActiveSupport::TaggedLogging.new(ActiveSupport::Logger.new($stdout))
    config.log_level = ENV.fetch("RAILS_LOG_LEVEL", "info")

    config.active_record.dump_schema_after_migration = false

    # Expand/contract, like GitLab's post-deployment migrations: bluegreen runs
    # `bin/rails db:migrate` with BLUEGREEN_MIGRATION_PHASE=expand while the
    # old release still serves (db/migrate only), and with =contract once
    # every color serves the new release (db/migrate + db/post_migrate).
    if ENV["BLUEGREEN_MIGRATION_PHASE"] == "contract"
      config.paths["db/migrate"] << "db/post_migrate"
    end
  end
end
