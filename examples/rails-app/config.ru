# A stand-in for a Rails app: one Rack endpoint that says which release runs
# and which migrations the shared database has, plus a health check.
applied = lambda do
  path = File.join(ENV.fetch("DATABASE_DIR"), "schema_migrations")
  File.exist?(path) ? File.read(path).split : []
end

run lambda { |env|
  if env["PATH_INFO"] == "/up"
    [200, { "content-type" => "text/plain" }, ["ok\n"]]
  else
    body = "rails-app release #{ENV['BLUEGREEN_RELEASE']} (#{ENV['BLUEGREEN_COLOR']}), " \
           "schema #{applied.call.last || 'empty'}\n"
    [200, { "content-type" => "text/plain" }, [body]]
  end
}
