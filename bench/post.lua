-- wrk script: POST a new ticket. By default to the gateway (POST /requests, JSON); with `-- sdp <access token>`
-- after the URL, straight to ServiceDesk Plus v3 (POST /api/v3/requests, form field input_data).
-- The request is built once per thread (wrk.init formats it after init), so the script costs nothing per request.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"subject": "Benchmark ticket", "description": "Created by ./dev bench", '
  .. '"requester_email": "bench@example.com", "priority": "High"}'

local function urlencode(text)
  return (text:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function init(args)
  if args[1] == "sdp" then
    local input_data = '{"request":{"subject":"Benchmark ticket","description":"Created by ./dev bench",'
      .. '"requester":{"email_id":"bench@example.com"},"priority":{"name":"High"}}}'
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    wrk.headers["Accept"] = "application/vnd.manageengine.sdp.v3+json"
    wrk.headers["Authorization"] = "Zoho-oauthtoken " .. args[2]
    wrk.body = "input_data=" .. urlencode(input_data)
  end
end
