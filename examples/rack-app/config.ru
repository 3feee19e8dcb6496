# The classic Rack "Hello, world!" (works with Rack 2 and 3).
run lambda { |env| [200, { "content-type" => "text/plain" }, ["Hello, world!\n"]] }
