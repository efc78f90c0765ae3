-- The class of the last failure (not_found, auth_required, unreachable, timeout, too_large, refused, failed); error_message holds its sentence for users.
ALTER TABLE repos ADD COLUMN error_code TEXT;
