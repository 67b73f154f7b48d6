-- POST a new batch of events on every request: every event has an event_id
-- never sent before (run tag, thread id, batch counter, index), so none is a
-- duplicate, and consecutive batches address consecutive shipments.
-- args: API key, run tag, number of target shipments, batch size, first
-- occurred_at (epoch seconds), and the item template (string.format, filled
-- with tracking-number index, tag, thread id, batch, index, occurred_at).
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

function init(args)
  key, tag = args[1], args[2]
  shipments, batch, first_epoch = tonumber(args[3]), tonumber(args[4]), tonumber(args[5])
  item = args[6]
  sent = 0
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. key
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local n = sent
  sent = sent + 1
  local occurred_at = os.date("!%Y-%m-%dT%H:%M:%SZ", first_epoch + n)
  local items = {}
  for i = 0, batch - 1 do
    local target = (n * batch + i) % shipments + 1
    items[i + 1] = string.format(item, target, tag, thread_id, n, i, occurred_at)
  end
  return wrk.format(nil, nil, nil, "[" .. table.concat(items, ",") .. "]")
end
