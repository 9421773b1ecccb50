--[[
cli_filter.lua - run `preflight check` on every batch script before `sbatch` submits it.

Install (on the login nodes, where users run sbatch):
  1. slurm.conf:   CliFilterPlugins=lua
  2. this file as  cli_filter.lua  next to slurm.conf (e.g. /etc/slurm/cli_filter.lua)
  3. `preflight` installed where sbatch can find it (or set PREFLIGHT below to its full path)

What it does: for `sbatch SCRIPT ...` it runs `preflight check SCRIPT` in the submit directory
and prints the report on the user's terminal. Exit 1 (findings at or above fail-on) rejects the
submission: sbatch says "cli_filter plugin terminated with error" and exits 1. Exit 2
(preflight itself could not run: bad config, internal error) and a missing `preflight` let the
job through with a warning, so a broken install never blocks a whole site (FAIL_CLOSED).
salloc, srun, `sbatch --wrap` and scripts read from stdin are not checked.

Users can bypass a cli_filter (their own SLURM_CONF, their own sbatch build): it is a guard
rail, not a policy. Enforce policy with a job_submit plugin on the controller.
Only the script's own #SBATCH directives are checked, not options given on the sbatch command
line (`preflight sbatch SCRIPT ARGS` merges both).
Tested with Debian's slurm-wlm 22.05 (cli_filter_lua.so, Lua 5.1), see examples/README.md.
]]

local PREFLIGHT = os.getenv("PREFLIGHT_CLI_FILTER_BIN") or "preflight"   -- site: full path here
local EXTRA_ARGS = ""            -- site policy, e.g. "--fail-on warning" or "--config /etc/preflight.yaml"
local FAIL_CLOSED = false        -- true: reject the job when preflight cannot run at all
local SKIP_ENV = "PREFLIGHT_CLI_FILTER_SKIP"   -- set to 1 to skip (documented escape hatch)

local function shell_quote(s)
  return "'" .. string.gsub(s, "'", "'\\''") .. "'"
end

-- Run a command, return (stdout+stderr text, exit status). Lua 5.1's os.execute returns the raw
-- wait status, so the status is echoed by the shell instead.
local function run(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"__preflight_rc=$?\"")
  if p == nil then
    return "", 127
  end
  local out = p:read("*a") or ""
  p:close()
  local rc = tonumber(string.match(out, "__preflight_rc=(%d+)%s*$")) or 127
  out = string.gsub(out, "__preflight_rc=%d+%s*$", "")
  return out, rc
end

function slurm_cli_setup_defaults(options, early_pass)
  return slurm.SUCCESS
end

function slurm_cli_pre_submit(options, pack_offset)
  if options["type"] ~= "sbatch" or options["wrap"] ~= nil then
    return slurm.SUCCESS
  end
  if os.getenv(SKIP_ENV) == "1" then
    io.stderr:write("preflight: skipped (" .. SKIP_ENV .. "=1)\n")
    return slurm.SUCCESS
  end
  if pack_offset ~= nil and pack_offset > 0 then
    return slurm.SUCCESS           -- heterogeneous job: the script was checked with component 0
  end
  local argv = options.argv
  local script = argv and argv[1]
  if script == nil or script == "" then
    return slurm.SUCCESS           -- script from stdin: nothing on disk to check
  end

  local out, rc = run(PREFLIGHT .. " check --no-color " .. EXTRA_ARGS .. " " .. shell_quote(script))
  if rc == 0 then
    return slurm.SUCCESS
  end
  io.stderr:write(out)
  if rc == 1 then
    io.stderr:write("preflight: not submitted: fix the errors above (or: " .. SKIP_ENV .. "=1 sbatch ...)\n")
    return slurm.ERROR
  end
  if rc == 127 then
    io.stderr:write("preflight: `" .. PREFLIGHT .. "` not found; the script was not checked\n")
  else
    io.stderr:write("preflight: could not check the script (exit " .. rc .. ")\n")
  end
  if FAIL_CLOSED then
    return slurm.ERROR
  end
  return slurm.SUCCESS
end

function slurm_cli_post_submit(offset, job_id, step_id)
  return slurm.SUCCESS
end
