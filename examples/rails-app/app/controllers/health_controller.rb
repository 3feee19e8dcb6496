class HealthController < ApplicationController
  # The health check bluegreen polls: answers "ok" only if the database does.
  def show
    ActiveRecord::Base.connection.select_value("SELECT 1")
    render plain: "ok\n"
  rescue StandardError => e
    render plain: "database unavailable: #{e.class}\n", status: :service_unavailable
  end
end
