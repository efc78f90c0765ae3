DROP TABLE audit_events;
DROP TABLE team_repos;
DROP TABLE team_invites;
DROP TABLE team_members;
DROP TABLE teams;
