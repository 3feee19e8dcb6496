# No Bundler and no Gemfile: the gems come straight from the system's
# rubygems (Debian's ruby-rails, ruby-pg and puma packages). Activating them
# up front pins the Rails series and keeps `require` from falling back to
# a gem search (whose rescued LoadError otherwise shows up as the "cause"
# of every later exception).
gem "rails", "~> 6.1.0"
gem "pg", ">= 1.1"

ENV["RAILS_ENV"] ||= ENV["RACK_ENV"] || "production"
