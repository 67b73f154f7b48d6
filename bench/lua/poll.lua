-- GET one shipment, the same request every time.
-- args: the API key, then optionally an ETag to send as If-None-Match.
function init(args)
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  if args[2] then
    wrk.headers["If-None-Match"] = args[2]
  end
end
