class ApplicationController < ActionController::Base
  # An API-style app: no sessions, no forms, so no CSRF tokens.
  skip_forgery_protection

  private

  # First line of every page: "release R C", e.g. "release v1 blue".
  def release_line
    "release #{ENV.fetch('BLUEGREEN_RELEASE', 'dev')} #{ENV.fetch('BLUEGREEN_COLOR', 'none')}"
  end
end
