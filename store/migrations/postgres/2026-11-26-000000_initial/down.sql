DROP TABLE jobs;
DROP TABLE repo_access;
DROP TABLE repos;
DROP TABLE users;
